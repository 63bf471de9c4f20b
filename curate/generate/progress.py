"""What a long generation counts (for the report) and shows (done/total, requests/s, tokens/s, errors)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    """Counts for the progress bar, the summary and the stage report."""

    samples_total: int = 0
    samples_cached: int = 0
    samples_done: int = 0
    samples_failed: int = 0
    requests: int = 0
    responses: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests_without_usage: int = 0
    failed_attempts_by_kind: Counter[str] = field(default_factory=Counter)
    errors_by_kind: Counter[str] = field(default_factory=Counter)
    #: what was noted once per subject (`n_ignored`: server URLs), for the report
    notes: dict[str, list[str]] = field(default_factory=dict)
    identical_samples: int = 0
    damaged_cache_lines: int = 0
    #: samples whose cached line was damaged, asked again
    asked_again: int = 0
    unverified_cache_lines: int = 0
    #: for the stage report's warnings (said once each)
    warnings: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    finished_at: float | None = None

    @property
    def wall_s(self) -> float:
        return (self.finished_at or time.perf_counter()) - self.started

    def as_dict(self) -> dict[str, Any]:
        wall = self.wall_s
        return {"samples_total": self.samples_total, "from_cache": self.samples_cached, "generated": self.samples_done,
                "failed": self.samples_failed, "requests": self.requests, "responses": self.responses,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "requests_without_usage": self.requests_without_usage,
                "failed_attempts_by_kind": dict(self.failed_attempts_by_kind.most_common()),
                "errors_by_kind": dict(self.errors_by_kind.most_common()), "n_ignored": self.notes.get("n_ignored", []),
                "max_tokens_capped": self.notes.get("max_tokens_capped", []),
                "identical_samples": self.identical_samples, "damaged_cache_lines": self.damaged_cache_lines,
                "unverified_cache_lines": self.unverified_cache_lines, "generation_s": round(wall, 3),
                "requests_per_s": round(self.responses / wall, 2) if wall else None}


class GenerationProgress:
    """Feeds the stage's progress callback: samples done of the total, with requests/s, tokens/s and errors."""

    def __init__(self, stats: Stats, progress: Any) -> None:
        self.stats = stats
        self.progress = progress
        self.done = stats.samples_cached
        self._report()

    def _report(self) -> None:
        s = self.stats
        wall = max(s.wall_s, 1e-9)
        retries = sum(s.failed_attempts_by_kind.values())
        note = (f"{s.responses / wall:.0f} req/s {s.completion_tokens / wall:.0f} tok/s errors {s.samples_failed}"
                + (f" failed attempts {retries}" if retries else ""))
        self.progress("generate", self.done, s.samples_total, note)

    def advance(self, count: int = 1) -> None:
        self.done += count
        self._report()
