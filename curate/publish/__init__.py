"""`curate publish`: the HF dataset layout and a real dataset card, written to a local dir or pushed to the Hub.

Refuses data that skipped benchmark decontamination or PHI scrubbing unless `force=True`, and the card then says
so. Whether a step ran is read from the run's manifest (`run_dir`), else from the rows' own columns
(`contaminated_by`, `phi_found`), which those stages add.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from curate.io import read_rows
from curate.publish.card import render_card
from curate.publish.hub import push_folder
from curate.publish.layout import hub_row, split_rows, write_splits

#: (stage, column it adds to every row, what it protects against)
SAFETY_STEPS = (("decontaminate", "contaminated_by", "benchmark decontamination"),
                ("scrub", "phi_found", "PHI scrubbing"))


class PublishRefused(ValueError):
    """The data skipped a safety step and `force` was not given."""


def producing_stage(input: Path, run: Any) -> str | None:
    """The run stage whose recorded output is this very file (by sha256), if any."""
    from curate.pipeline.rundir import sha256_path

    digest = sha256_path(input)
    return next((name for name in run.order if (run.stage(name).get("output") or {}).get("sha256") == digest), None)


def skipped_safety_steps(rows: list[dict[str, Any]], run: Any | None, input: Path | None = None) -> list[str]:
    """Safety steps the data did not go through. The manifest vouches only for a file the run itself wrote at or
    after that step (publishing `deduped.parquet` of a finished run is still refused); otherwise the rows' columns
    decide."""
    made_by = producing_stage(input, run) if run is not None and input is not None else None
    skipped = []
    for stage, column, label in SAFETY_STEPS:
        by_manifest = (made_by is not None and run.done(stage)
                       and run.order.index(made_by) >= run.order.index(stage))
        by_columns = bool(rows) and all(column in row for row in rows)
        if not (by_manifest or by_columns):
            skipped.append(label)
    return skipped


def publish(input: Path, *, repo_id: str, local_dir: Path | None = None, private: bool = False, force: bool = False,
            run_dir: Path | None = None, split_by: str | None = None, questions: Path | None = None) -> Path:
    """Write the dataset (Parquet per split + README.md card) to `local_dir`, or push it to the Hub when
    `local_dir` is None. Returns the folder written (or the hf:// location pushed to)."""
    from curate.pipeline.rundir import RunDir
    from curate.pipeline.summary import questions_by_id, with_question_fields

    input = Path(input)
    if "/" not in repo_id or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"--repo-id {repo_id!r}: expected ORG/NAME")
    run = RunDir.open(run_dir) if run_dir else None
    rows = read_rows(input)
    if not rows:
        raise ValueError(f"{input}: no rows to publish")
    skipped = skipped_safety_steps(rows, run, input)
    if skipped and not force:
        raise PublishRefused(f"refusing to publish {input}: {' and '.join(skipped)} did not run on it "
                             "(no record in the run manifest, and the rows lack its column). Run the missing stage, "
                             "or pass --force to publish anyway (the dataset card will say so).")
    if questions:
        rows = with_question_fields(rows, {q["id"]: q for q in read_rows(questions)})
    elif run is not None:
        rows = with_question_fields(rows, questions_by_id(run))
    published = [hub_row(row, i, input) for i, row in enumerate(rows)]
    splits = split_rows(published, split_by)

    target = Path(local_dir) if local_dir else None
    if target and target.exists() and any(target.iterdir()) and not (target / "README.md").exists():
        raise ValueError(f"{target}: exists and is not an earlier publish folder; choose an empty or new --local-dir")
    parent = target.parent if target else Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".publish-", dir=parent))
    try:
        write_splits(splits, staging)
        card = render_card(repo_id=repo_id, splits=splits, run=run, skipped=skipped if force else [], input=input)
        (staging / "README.md").write_text(card, encoding="utf-8")
        if target is None:
            push_folder(staging, repo_id=repo_id, private=private)
            return Path(f"hf://datasets/{repo_id}")
        # Swap the finished folder into place: a crash before this leaves any earlier publish untouched.
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=".publish-old-", dir=parent))
            os.replace(target, old / "x")
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
        return target
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


__all__ = ["PublishRefused", "publish", "push_folder", "skipped_safety_steps"]
