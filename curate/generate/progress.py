"""What a long generation shows: a live bar (done/total, requests/s, tokens/s, errors, ETA) and a final summary."""

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
    failed_attempts_by_kind: Counter[str] = field(default_factory=Counter)
    errors_by_kind: Counter[str] = field(default_factory=Counter)
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
                "failed_attempts_by_kind": dict(self.failed_attempts_by_kind.most_common()),
                "errors_by_kind": dict(self.errors_by_kind.most_common()), "wall_s": round(wall, 3),
                "requests_per_s": round(self.responses / wall, 2) if wall else None}


class Progress:
    """A rich progress bar on stderr; silent when disabled."""

    def __init__(self, stats: Stats, enabled: bool = True, description: str = "generate") -> None:
        self.stats = stats
        self.enabled = enabled
        self.description = description
        self._bar = None
        self._task = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
            from rich.text import Text

            stats = self.stats

            class Rates(ProgressColumn):
                def render(self, task: Any) -> Text:
                    wall = max(stats.wall_s, 1e-9)
                    retries = sum(stats.failed_attempts_by_kind.values())
                    return Text(f"{stats.responses / wall:.0f} req/s {stats.completion_tokens / wall:.0f} tok/s "
                                f"errors {stats.samples_failed}" + (f" failed attempts {retries}" if retries else ""))

            from curate.commands.common import console

            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(bar_width=20),
                                 TextColumn("{task.completed}/{task.total}"),
                                 Rates(), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=console, transient=False, refresh_per_second=4)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.stats.samples_total,
                                            completed=self.stats.samples_cached)
        return self

    def advance(self, count: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, count)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def print_summary(stats: Stats, output: str | None = None) -> None:
    from rich.table import Table

    from curate.commands.common import console

    d = stats.as_dict()
    table = Table(title=f"generate{f' -> {output}' if output else ''}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [("samples", d["samples_total"]), ("from cache", d["from_cache"]), ("generated", d["generated"]),
            ("failed (error in trace)", d["failed"]), ("requests sent", d["requests"]), ("responses", d["responses"]),
            ("tokens in", d["prompt_tokens"]), ("tokens out", d["completion_tokens"]),
            ("wall time", f"{d['wall_s']:.1f} s"), ("requests/s", d["requests_per_s"])]
    rows += [(f"failed attempts: {k}", v) for k, v in d["failed_attempts_by_kind"].items()]
    rows += [(f"errors: {k}", v) for k, v in d["errors_by_kind"].items()]
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
