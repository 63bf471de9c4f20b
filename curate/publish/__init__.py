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

from pydantic import Field, field_validator

from curate.publish.card import render_card
from curate.publish.hub import push_folder
from curate.publish.layout import hub_row, split_rows, write_splits
from curate.question_rows import join_questions, load_questions
from curate.records import PublishColumns
from curate.stage import Batch, FileInput, Outcome, Stage, StageConfig, StageReport, option

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


class PublishConfig(StageConfig):
    repo_id: str = option(..., "ORG/NAME of the dataset on the Hub (also the card title)")
    private: bool = option(False, "create the Hub repo private")
    force: bool = option(False, "publish even if decontamination or PHI scrubbing was skipped (the card says so)")
    push: bool = option(False, "also upload the folder to the Hub (token from HF_TOKEN); without --local-dir it is "
                               "always pushed", cli=False)
    split_by: str | None = option(None, "a column whose values become splits (default: one train split)")

    @field_validator("repo_id")
    @classmethod
    def _org_name(cls, repo_id: str) -> str:
        if repo_id.count("/") != 1 or not all(repo_id.split("/")):
            raise ValueError(f"--repo-id {repo_id!r}: expected ORG/NAME")
        return repo_id


class PublishReport(StageReport):
    repo_id: str
    splits: dict[str, int] = Field(default_factory=dict)
    local_dir: str | None = None
    pushed: bool = False
    url: str | None = None
    forced: list[str] = Field(default_factory=list, description="safety steps the data skipped, published with force")

    def summary(self) -> str:
        where = self.url or self.local_dir
        return f"{self.stage}: {self.rows_out} rows in {len(self.splits)} split(s) -> {where}"


STAGING_PREFIX = ".publish-"


class PublishStage(Stage[PublishConfig, PublishReport]):
    """Write the dataset (Parquet per split + README.md card) to the output folder, or push it to the Hub when no
    folder is given (or `push` is set)."""

    name = "publish"
    Config, Report, Columns = PublishConfig, PublishReport, PublishColumns
    files = {"questions": FileInput("Question file, when rows lack the question text"),
             "run_dir": FileInput("the run directory the file came from (counts, reports)", flag="--run-dir")}

    def output_kind(self) -> str:
        return "folder"

    def process(self, batch: Batch) -> Outcome:
        from curate.pipeline.rundir import RunDir
        from curate.pipeline.summary import questions_by_id

        run = RunDir.open(batch.files["run_dir"]) if batch.files["run_dir"] else None
        rows = batch.rows
        if not rows:
            raise ValueError(f"{batch.path}: no rows to publish")
        skipped = skipped_safety_steps(rows, run, batch.path)
        if skipped and not self.config.force:
            raise PublishRefused(f"refusing to publish {batch.path}: {' and '.join(skipped)} did not run on it "
                                 "(no record in the run manifest, and the rows lack its column). Run the missing "
                                 "stage, or pass --force to publish anyway (the dataset card will say so).")
        if batch.files["questions"]:
            rows = join_questions(rows, load_questions(batch.files["questions"]))
        elif run is not None:
            rows = join_questions(rows, questions_by_id(run))
        published = [hub_row(row, i, batch.path) for i, row in enumerate(rows)]
        self._splits = split_rows(published, self.config.split_by)
        self._run, self._skipped, self._input = run, skipped, batch.path
        return Outcome(kept=published, stats=dict(repo_id=self.config.repo_id, forced=skipped,
                                                  splits={k: len(v) for k, v in self._splits.items()}))

    def write_outputs(self, outcome: Outcome, output: Path | None, rejected: Path | None) -> None:
        c = self.config
        target = Path(output) if output else None
        if target and target.exists() and any(target.iterdir()) and not (target / "README.md").exists():
            raise ValueError(f"{target}: exists and is not an earlier publish folder; choose an empty or new --local-dir")
        parent = target.parent if target else Path(tempfile.gettempdir())
        staging = make_staging(parent)
        try:
            write_splits(self._splits, staging)
            card = render_card(repo_id=c.repo_id, splits=self._splits, run=self._run,
                               skipped=self._skipped if c.force else [], input=self._input)
            (staging / "README.md").write_text(card, encoding="utf-8")
            url = push_folder(staging, repo_id=c.repo_id, private=c.private) if target is None or c.push else None
            if target is not None:
                swap_into_place(staging, target)
            outcome.stats.update(local_dir=str(target) if target else None, url=url, pushed=url is not None)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

def make_staging(parent: Path) -> Path:
    """A fresh staging folder beside the target (mode from the user's umask); folders a killed run left go first."""
    from curate.io import dir_mode, process_alive

    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.glob(f"{STAGING_PREFIX}*"):
        pid = old.name[len(STAGING_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=parent))
    os.chmod(staging, dir_mode())
    return staging


def swap_into_place(staging: Path, target: Path) -> None:
    """Swap the finished folder into place: a crash before this leaves any earlier publish untouched."""
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-old-", dir=target.parent))
        os.replace(target, old / "x")
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)


def publish(input: Path, *, repo_id: str, local_dir: Path | None = None, private: bool = False, force: bool = False,
            run_dir: Path | None = None, split_by: str | None = None, questions: Path | None = None) -> Path:
    """Write the dataset to `local_dir`, or push it to the Hub when `local_dir` is None. Returns the folder written
    (or the hf:// location pushed to)."""
    PublishStage(repo_id=repo_id, private=private, force=force, split_by=split_by).run(
        input, local_dir, questions=questions, run_dir=run_dir)
    return Path(local_dir) if local_dir else Path(f"hf://datasets/{repo_id}")


__all__ = ["PublishConfig", "PublishRefused", "PublishReport", "PublishStage", "publish", "push_folder",
           "skipped_safety_steps"]
