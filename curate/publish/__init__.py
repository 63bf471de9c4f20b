"""`curate publish`: the HF dataset layout and a real dataset card, written to a local dir or pushed to the Hub.

The folder (`curate.publish.folder`) is checked before any work: only a folder curate published itself is replaced.
The gate (`curate.publish.gate`) checks the rows themselves: every answer is its gold letter (the question file's),
a scan of every string the files will hold finds no PHI, no row is a benchmark evaluation item (unless the dataset is declared an
evaluation set, which is then never pushed to the Hub). A failed check refuses; `force` publishes anyway and the
card lists what it overrode. Every claim in the card comes from these checks.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from curate.io import OutputError
from curate.publish.card import render_card
from curate.publish.folder import check_folder, make_staging, swap_into_place, write_manifest
from curate.publish.gate import GateReport, overridden, run_gate
from curate.publish.hub import push_folder
from curate.publish.layout import (
    build_layout,
    hub_row,
    pseudonymise_reviewers,
    published_columns,
    split_rows,
    write_layout,
)
from curate.question_rows import join_questions, load_questions
from curate.records import PublishColumns
from curate.stage import Batch, ConfigError, FileInput, Outcome, Stage, StageConfig, StageReport, option


class PublishRefused(ValueError):
    """A check of the rows failed and `force` was not given (or the dataset may not go to the Hub)."""


def producing_stage(input: Path, run: Any) -> str | None:
    """The run stage whose recorded output is this very file (by sha256), if any."""
    from curate.pipeline.rundir import sha256_path

    digest = sha256_path(input)
    return next((name for name in run.order if (run.stage(name).get("output") or {}).get("sha256") == digest), None)


class PublishConfig(StageConfig):
    repo_id: str = option(..., "ORG/NAME of the dataset on the Hub (also the card title)")
    private: bool = option(False, "create the Hub repo private")
    force: bool = option(False, "publish even when a check of the rows fails (answers, PHI, benchmark items): the card "
                                "lists what was overridden")
    evaluation_set: bool = option(False, "the rows are benchmark evaluation items on purpose (a demo, an eval set): "
                                         "the card says so, and pushing to the Hub is refused")
    benchmark_paths: dict[str, str] = option(default_factory=dict, flag="--benchmark-path", metavar="SOURCE:SPLIT=FILE",
                                             help="native file of a benchmark the gate checks the rows against "
                                             "(default: the run's [decontaminate] files, $CURATE_BENCHMARK_DIR, else "
                                             "the Hub)")
    workers: int = option(0, "processes for the PHI scan (0: one per CPU, at most 8)", ge=0, volatile=True)
    push: bool = option(False, "also upload the folder to the Hub (token from HF_TOKEN); without --local-dir it is "
                               "always pushed", cli=False)
    split_by: str | None = option(None, "a column whose values become splits (default: one train split)")
    extra_columns: list[str] = option(default_factory=list, flag="--extra-column",
                                      help="a column of the input beyond curate's own to publish too (in `lineage`; "
                                      "repeat or comma-separate): only curate's columns are published otherwise, and "
                                      "the PHI gate scans these like every other")

    @field_validator("extra_columns", mode="before")
    @classmethod
    def _columns(cls, value: Any) -> list[str]:
        items = [value] if isinstance(value, str) else list(value or [])
        return list(dict.fromkeys(c.strip() for item in items for c in str(item).split(",") if c.strip()))

    @field_validator("repo_id")
    @classmethod
    def _org_name(cls, repo_id: str) -> str:
        if repo_id.count("/") != 1 or not all(repo_id.split("/")):
            raise ValueError(f"--repo-id {repo_id!r}: expected ORG/NAME")
        return repo_id


class PublishReport(StageReport):
    repo_id: str
    gate: GateReport
    evaluation_set: bool = False
    splits: dict[str, int] = Field(default_factory=dict)
    local_dir: str | None = None
    pushed: bool = False
    url: str | None = None
    forced: list[str] = Field(default_factory=list, description="failed checks published anyway with force")
    left_out: list[str] = Field(default_factory=list, description="columns of the input that were not published")

    def summary(self) -> str:
        where = self.url or self.local_dir
        return f"{self.stage}: {self.rows_out} rows in {len(self.splits)} split(s) -> {where}"


class PublishStage(Stage[PublishConfig, PublishReport]):
    """Write the dataset (Parquet per config and split + README.md card) to the output folder, or push it to the Hub when no
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

        c = self.config
        run = RunDir.open(batch.files["run_dir"]) if batch.files["run_dir"] else None
        if not batch.rows:
            raise ValueError(f"{batch.path}: no rows to publish")
        if run is not None and producing_stage(batch.path, run) is None:
            raise PublishRefused(f"{batch.path} is not an output of the run in {run.path} (no stage wrote a file with "
                                 "its sha256): give the run it came from, or publish it without --run-dir")
        rows = batch.rows
        questions = (load_questions(batch.files["questions"]) if batch.files["questions"]
                     else questions_by_id(run) if run is not None else None)
        known_gold: list[str | None] | None = None
        if questions:
            rows = join_questions(rows, questions)
            # the question file's gold letter, not the row's own: the gate refuses a row that disagrees
            known_gold = [(questions.get(str(row.get("question_id") or "")) or {}).get("answer") for row in rows]
        extra = [*c.extra_columns, *([c.split_by] if c.split_by else [])]
        left_out = sorted({name for row in rows for name in row} - published_columns(extra))
        public = pseudonymise_reviewers(rows)
        published = [hub_row(row, i, batch.path, extra) for i, row in enumerate(public)]  # a malformed row: located
        benchmarks, paths = run_benchmarks(run)
        gate = run_gate(published, evaluation_set=c.evaluation_set, benchmarks=benchmarks,
                        benchmark_paths={**paths, **c.benchmark_paths} or None, workers=c.workers,
                        known_gold=known_gold, sources=rows)
        forced = overridden(gate)
        if forced and not c.force:
            raise PublishRefused(f"refusing to publish {batch.path}: " + "; ".join(forced) + ". Fix the rows (or the "
                                 "stage that let them through), or pass --force to publish anyway (the dataset card "
                                 "will list what was overridden).")
        self._splits = split_rows(published, c.split_by)
        self._layout = build_layout(self._splits)
        self._run, self._gate, self._input = run, gate, batch.path
        warnings = [f"not published (not one of curate's columns; name one with --extra-column to publish it): "
                    f"{', '.join(left_out)}"] if left_out else []
        return Outcome(kept=published, warnings=warnings,
                       stats=dict(repo_id=c.repo_id, gate=gate, forced=forced, evaluation_set=c.evaluation_set,
                                  splits={k: len(v) for k, v in self._splits.items()}, left_out=left_out))

    def preflight(self) -> None:
        if self.config.evaluation_set and self.config.push:
            raise ConfigError("an evaluation set is never pushed to the Hub: its rows are benchmark evaluation items "
                              "(set push = false, and publish it as a local folder)")

    def _check_paths(self, input: Any, output: Any, rejected: Any, report: Any,
                     files: dict[str, Any]) -> tuple[Path | None, Path, Path | None, Path | None]:
        paths = super()._check_paths(input, output, rejected, report, files)
        input_path, target = paths[0], paths[1]
        reads = [p for p in (input_path, *(Path(f) for f in files.values() if f is not None)) if p is not None]
        # the folder (a link's target) is checked before any work: only a folder curate published is replaced
        self._folder = check_folder(target, reads) if target is not None else None
        return paths

    def write_outputs(self, outcome: Outcome, output: Path | None, rejected: Path | None) -> None:
        c = self.config
        target = Path(output) if output else None
        if c.evaluation_set and (target is None or c.push):
            raise PublishRefused("refusing to push an evaluation set to the Hub: its rows are benchmark evaluation "
                                 "items (publish it with --local-dir)")
        folder = getattr(self, "_folder", None) or (check_folder(target, []) if target else None)
        staging = make_staging(folder.parent if folder else Path(tempfile.gettempdir()))
        try:
            write_layout(self._layout, staging)
            card = render_card(repo_id=c.repo_id, splits=self._splits, layout=self._layout, run=self._run,
                               gate=self._gate, forced=overridden(self._gate), input=self._input)
            (staging / "README.md").write_text(card, encoding="utf-8")
            url = push_folder(staging, repo_id=c.repo_id, private=c.private) if target is None or c.push else None
            if target is not None and folder is not None:
                write_manifest(staging)  # the local folder only: the Hub gets the dataset, not curate's marker
                swap_into_place(staging, target, folder)
            outcome.stats.update(local_dir=str(target) if target else None, url=url, pushed=url is not None)
        except OSError as exc:  # a disk that filled up while writing: one located line, the earlier folder kept
            raise OutputError(target or staging, exc) from None
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)


def run_benchmarks(run: Any) -> tuple[list[str], dict[str, str]]:
    """The benchmarks (and their files) the run decontaminated against, which the gate checks too."""
    config = ((run.manifest.get("config") or {}).get("decontaminate") or {}) if run is not None else {}
    return list(config.get("benchmarks") or []), dict(config.get("benchmark_paths") or {})


def publish(input: Path, *, local_dir: Path | None = None, run_dir: Path | None = None, questions: Path | None = None,
            **options: Any) -> Path:
    """Write the dataset to `local_dir`, or push it to the Hub when `local_dir` is None (options: PublishConfig's).
    Returns the folder written (or the hf:// location pushed to)."""
    PublishStage(**options).run(input, local_dir, questions=questions, run_dir=run_dir)
    return Path(local_dir) if local_dir else Path(f"hf://datasets/{options['repo_id']}")


__all__ = ["PublishConfig", "PublishRefused", "PublishReport", "PublishStage", "publish", "push_folder"]
