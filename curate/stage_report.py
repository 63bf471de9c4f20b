"""The small JSON report every stage writes: counts in and out, per reason, per source.

`curate report` and the dataset card read these, so every stage uses this one shape.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from curate.io import Rejected, write_json, write_rows


@dataclass
class StageReport:
    stage: str
    rows_in: int = 0
    rows_out: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    per_source: dict[str, dict[str, int]] = field(default_factory=dict)
    wall_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: str | os.PathLike[str]) -> None:
        write_json(self.as_dict(), path)


class StageCounter:
    """Counts rows through a stage; `report()` turns them into a StageReport."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.started = time.perf_counter()
        self.rows_in = 0
        self.rows_out = 0
        self.rejected = 0
        self.reasons: Counter[str] = Counter()
        self.per_source: dict[str, Counter[str]] = {}

    def seen(self, source: str | None = None) -> None:
        self.rows_in += 1
        self.per_source.setdefault(source or "unknown", Counter())["in"] += 1

    def kept(self, source: str | None = None) -> None:
        self.rows_out += 1
        self.per_source.setdefault(source or "unknown", Counter())["out"] += 1

    def dropped(self, reasons: list[str], source: str | None = None) -> None:
        self.rejected += 1
        counts = self.per_source.setdefault(source or "unknown", Counter())
        for reason in reasons or ["unspecified"]:
            self.reasons[reason] += 1
            counts[reason] += 1

    def tally(self, kept: Iterable[Mapping[str, Any]], rejected: Iterable[Rejected]) -> None:
        """Count a stage's kept rows and its rejected rows, each under its row's `source`."""
        for row in kept:
            self.seen(row.get("source"))
            self.kept(row.get("source"))
        for r in rejected:
            self.seen(r.row.get("source"))
            self.dropped(r.reasons, r.row.get("source"))

    def report(self, **extra: Any) -> StageReport:
        return StageReport(
            stage=self.stage,
            rows_in=self.rows_in,
            rows_out=self.rows_out,
            rejected=self.rejected,
            reasons=dict(self.reasons.most_common()),
            per_source={src: dict(c) for src, c in sorted(self.per_source.items())},
            wall_s=round(time.perf_counter() - self.started, 3),
            extra=extra,
        )


def write_stage_files(kept: Iterable[Any], rejected: Iterable[Rejected], output: str | os.PathLike[str],
                      rejected_path: str | os.PathLike[str] | None, stage: str) -> None:
    """A stage's two tables: the rejected side file (when asked for, with reason codes) and the output, each atomic."""
    if rejected_path is not None:
        write_rows([r.as_row(stage) for r in rejected], rejected_path)
    write_rows(kept, output)
