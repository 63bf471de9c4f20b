"""The report of the training commands (`train-decoupled`, `experiment`): rows in and out, and the run's own figures
(stages, checks, status) in `extra`. They are not data stages: those have typed reports (`curate.stage`)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from curate.io import write_json


@dataclass
class TrainReport:
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
