"""Throughput and memory of one training stage: tokens/s and peak memory, the figures the benchmark prints."""

from __future__ import annotations

import resource
import sys
import time
from contextlib import contextmanager
from typing import Any


def _rss_peak_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


@contextmanager
def measure(stats: dict[str, Any]):
    """Fill `stats` with wall_s, cpu_s (this process's CPU seconds, all threads: on a shared machine a steadier
    measure of the work than wall time) and peak memory around the block (GPU: peak allocated, reset first; CPU:
    the process's peak resident set so far, which never goes down)."""
    import torch

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started, started_cpu = time.perf_counter(), time.process_time()
    try:
        yield stats
    finally:
        if cuda:
            torch.cuda.synchronize()
            stats["peak_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            stats["memory_kind"] = "cuda_max_allocated"
        else:
            stats["peak_memory_mib"] = round(_rss_peak_mib(), 1)
            stats["memory_kind"] = "process_peak_rss"
        stats["wall_s"] = round(time.perf_counter() - started, 3)
        stats["cpu_s"] = round(time.process_time() - started_cpu, 3)
        tokens = stats.get("tokens")
        if tokens:
            stats["tokens_per_s"] = round(tokens / max(stats["wall_s"], 1e-9), 1)
