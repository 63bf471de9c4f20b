"""The one process pool: a function mapped over chunks in worker processes, results in input order.

Fork where the platform has it: workers inherit what the parent built (a loaded NER engine, a question index)
copy-on-write, and scripts and notebooks need no `if __name__ == "__main__"` guard. At most `inflight` chunks per
worker are queued, so memory stays bounded whatever the input size.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Processes used when a stage is told `workers = 0` (one per CPU; more than this rarely pays on one machine).
MAX_AUTO_WORKERS = 8


def resolve_workers(workers: int) -> int:
    """`workers` as given, or one per CPU (at most MAX_AUTO_WORKERS) for 0."""
    return workers if workers > 0 else max(1, min(os.cpu_count() or 1, MAX_AUTO_WORKERS))


def start_method() -> str:
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def ordered_map(fn: Callable[[T], R], chunks: Sequence[T], *, workers: int, initializer: Callable[..., Any] | None = None,
                initargs: tuple[Any, ...] = (), inflight: int = 2) -> Iterator[R]:
    """`fn(chunk)` for each chunk, in order: in this process when `workers` <= 1 or there is one chunk, else in a pool
    of `workers` processes with at most `inflight` chunks per worker queued. `fn` must be a module-level function."""
    if workers <= 1 or len(chunks) <= 1:
        if initializer is not None:
            initializer(*initargs)
        yield from map(fn, chunks)
        return
    context = multiprocessing.get_context(start_method())
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=initializer, initargs=initargs) as pool:
        pending: dict[int, Future[R]] = {}
        submitted = 0
        for index in range(len(chunks)):
            while submitted < len(chunks) and submitted < index + inflight * workers:
                pending[submitted] = pool.submit(fn, chunks[submitted])
                submitted += 1
            yield pending.pop(index).result()


def chunked(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def flatten(parts: Iterable[Iterable[T]]) -> Iterator[T]:
    for part in parts:
        yield from part
