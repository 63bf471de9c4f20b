"""Which process this is in a multi-process launch (torchrun, `accelerate launch`), and the few collectives the
recipe needs beyond what the trainers do: one process writes the run folder, every process agrees on the GRPO set.

The launcher's environment (RANK, WORLD_SIZE, LOCAL_RANK) answers before any process group exists; the group
itself is created by the first trainer (gloo on CPU, NCCL on GPUs), so the collectives are used only after SFT.
"""

from __future__ import annotations

import os
from typing import Any


def world_size() -> int:
    """Processes in this launch; 1 when run plainly."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """The process that writes files and prints the summary."""
    return rank() == 0


def _group_ready() -> bool:
    import torch.distributed as dist

    return world_size() > 1 and dist.is_available() and dist.is_initialized()


def barrier() -> None:
    if _group_ready():
        import torch.distributed as dist

        dist.barrier()


def shard(items: list[Any]) -> list[Any]:
    """This process's share of `items` (every process gets its own; all of them once the shares are gathered).
    Before a process group exists there is nothing to gather with, so every process takes them all."""
    return items[rank()::world_size()] if _group_ready() else list(items)


def all_gather(value: Any) -> list[Any]:
    """Every process's `value`, in rank order (just [value] in a single process)."""
    if not _group_ready():
        return [value]
    import torch.distributed as dist

    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, value)
    return out


def any_process(flag: bool) -> bool:
    """True on every process when it is True on any (so all stop at the same step)."""
    return any(all_gather(bool(flag)))
