"""Where the real benchmark files and teacher traces are (`../shared/data`): one lookup for tests and benchmarks.

They are never shipped with curate, so callers skip (tests) or stop with a message (benchmarks) when this is None.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def find_shared_data(explicit: str | os.PathLike[str] | None = None, *, need: str = "benchmarks") -> Path | None:
    """The data folder holding `need` (a sub-path such as `benchmarks` or `traces/dev_traces.jsonl.gz`).

    An explicit folder (a `--data` flag), else `$CURATE_SHARED_DATA` when set, is the only place looked at (point it
    at a missing folder to run as a user without the data would); otherwise `../shared/data` beside the repository,
    then /work/shared/data."""
    chosen = explicit if explicit is not None else os.environ.get("CURATE_SHARED_DATA")
    candidates = [chosen] if chosen is not None else [REPO_ROOT.parent / "shared" / "data", "/work/shared/data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / need).exists():
            return Path(candidate)
    return None
