"""The stage contract: every curate stage is one config class, one typed report, the columns it adds, and one `run`.

    class DedupeStage(Stage[DedupeConfig, DedupeReport]):
        name = "dedupe"
        Config, Report, Columns = DedupeConfig, DedupeReport, DedupeColumns
        files = {"questions": FileInput("Question file, for trace rows that carry only question_id")}

        def process(self, batch: Batch) -> Outcome: ...          # corpus stages override the batch step

    report = DedupeStage(threshold=0.8).run("kept.parquet", "unique.parquet", rejected="dups.parquet")
    run_dedupe = DedupeStage.invoke                                # the same, as a plain function

The config class is the only home of each option (its default, type, range and help); the CLI flags
(`curate.commands.stage_cli`), the `curate run` TOML section and the Python keyword arguments are derived from it.
The report class is what the run summary, the HTML report and the dataset card read, by attribute. Per-row stages
(`RowStage`) implement one judgement over a batch of rows; corpus stages (dedupe, decontaminate, generate) override
`process`.

`Stage.run`, written once here, owns what every stage must do the same way: refuse an output that is the input (also
through a link); check every output's format and folder before any work (a full disk or read-only folder is one
located line, never a traceback); delete temp files a killed run left behind; read with located errors, or turn bad
rows into rejected rows with `skip_invalid`; warn on an empty input and on a stage that kept nothing; count rows per
primary reason and per source; write the rejected side file, the output and the report atomically.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from curate.io import (
    InputError,
    OutputError,
    Rejected,
    check_writable,
    iter_rows,
    location,
    remove_stale_temps,
    same_file,
    table_format,
    validation_error,
    write_json,
    write_rows,
)
from curate.progress import Progress, no_progress
from curate.records import RowQuestionColumns, RowTraceColumns, source_of

INVALID_INPUT = "invalid_input"


# ---------------------------------------------------------------- config


class StageConfig(BaseModel):
    """Base of every stage's options. Unknown keys are refused by name; values are checked on construction."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    def non_volatile(self) -> dict[str, Any]:
        """The options that shape the output (a pipeline stage's fingerprint): volatile ones (endpoints, concurrency,
        worker counts, cache locations) are left out."""
        data = self.model_dump(mode="json")
        return {k: v for k, v in data.items() if not is_volatile(type(self), k)}


def option(default: Any = ..., help: str = "", *, flag: str | None = None, short: str | None = None,
           volatile: bool = False, cli: bool = True, argument: bool = False, metavar: str | None = None,
           default_factory: Any = None, **constraints: Any) -> Any:
    """A config field with its CLI spelling: `flag` (default `--field-name`), `short` (`-n`), `argument=True` for a
    positional argument, `metavar` for KEY=VALUE options, `cli=False` to keep it out of the command line,
    `volatile=True` for options that do not change the output."""
    extra = {k: v for k, v in {"flag": flag, "short": short, "volatile": volatile or None, "argument": argument or None,
                               "metavar": metavar, "cli": None if cli else False}.items() if v is not None}
    if default_factory is not None:
        return Field(default_factory=default_factory, description=help, json_schema_extra=extra or None, **constraints)
    return Field(default, description=help, json_schema_extra=extra or None, **constraints)


def field_extra(model: type[BaseModel], name: str) -> dict[str, Any]:
    extra = model.model_fields[name].json_schema_extra
    return extra if isinstance(extra, dict) else {}


def is_volatile(model: type[BaseModel], name: str) -> bool:
    return bool(field_extra(model, name).get("volatile"))


class ConfigError(ValueError):
    """A bad option value or an unknown option, named."""


class StageError(RuntimeError):
    """A stage could not do its work for a reason the user can act on (no NER model, the teacher unreachable): one
    line, `hint` under it, and the exit code a CLI should end with."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class StageFailed(StageError):
    """The stage wrote what it could and then failed (too many rows it could not finish): exit 1, and a re-run
    continues from what was kept."""

    exit_code = 1


class StagePending(RuntimeError):
    """The stage waits on people (clinician review): a pipeline stops here, finished stages stay finished, and the
    same `curate run` picks up from this stage later."""


def make_config(config_class: type[StageConfig], options: Mapping[str, Any], *, origin: str = "") -> Any:
    """Build a stage's config, turning pydantic's errors into one line naming each bad option."""
    try:
        return config_class(**options)
    except ValidationError as exc:
        raise ConfigError(f"{origin}{describe_errors(exc)}") from None


def describe_errors(exc: ValidationError, name_of: Any = None) -> str:
    """`threshold: Input should be less than or equal to 1 (got 1.5); fuzz: unknown option`."""
    parts = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"])
        name = name_of(loc) if name_of else loc or "options"
        if error["type"] == "extra_forbidden":
            parts.append(f"{name}: unknown option")
        elif error["type"] == "missing":
            parts.append(f"{name}: required but missing")
        else:
            got = error.get("input")
            shown = "" if isinstance(got, dict | list) or error["type"] == "value_error" else f" (got {got!r})"[:120]
            parts.append(f"{name}: {error['msg']}{shown}")
    return "; ".join(parts)


# ---------------------------------------------------------------- report


class SourceCounts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows_in: int = 0
    rows_out: int = 0
    rejected: int = 0
    reasons: dict[str, int] = Field(default_factory=dict, description="primary reason of each rejected row")


class StageReport(BaseModel):
    """What every stage reports; each stage's report class adds its own typed fields."""

    model_config = ConfigDict(extra="forbid")

    stage: str
    rows_in: int = 0
    rows_out: int = 0
    rejected: int = 0
    reasons: dict[str, int] = Field(default_factory=dict,
                                    description="rejected rows per primary reason (each row counted once)")
    other_reasons: dict[str, int] = Field(default_factory=dict,
                                          description="further reasons of rejected rows, beside their primary one")
    per_source: dict[str, SourceCounts] = Field(default_factory=dict)
    incomplete: int = Field(default=0, description="output rows the stage could not finish (a teacher request that "
                                                   "failed): a re-run retries exactly these")
    wall_s: float = 0.0
    warnings: list[str] = Field(default_factory=list)

    def write(self, path: str | os.PathLike[str]) -> None:
        write_json(self.model_dump(mode="json"), path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Any:
        import json

        try:
            return cls.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
        except (ValueError, ValidationError) as exc:
            raise InputError(path, f"not a {cls.__name__} ({str(exc).splitlines()[0]})") from None

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def summary(self) -> str:
        """One line: what the stage did."""
        line = f"{self.stage}: kept {self.rows_out} of {self.rows_in} rows"
        if self.rejected:
            top = ", ".join(f"{k} {v}" for k, v in list(self.reasons.items())[:3])
            line += f" ({self.rejected} rejected: {top})"
        return line + f" in {self.wall_s:.1f}s"

    def details(self) -> list[str]:
        """Further lines a stage shows under its summary (its own figures)."""
        return []


class Tally:
    """Counts rows through a stage: in, out, rejected per primary reason (the others listed apart), per source."""

    def __init__(self) -> None:
        self.rows_in = self.rows_out = self.rejected = 0
        self.reasons: Counter[str] = Counter()
        self.other: Counter[str] = Counter()
        self.per_source: dict[str, SourceCounts] = {}

    def _source(self, row: Mapping[str, Any] | BaseModel) -> SourceCounts:
        if isinstance(row, BaseModel):  # a record (filter keeps FilteredTrace models): read, never dump
            row = {"source": getattr(row, "source", None), "question_id": getattr(row, "question_id", None),
                   "id": getattr(row, "id", None)}
        name = source_of(row) if row else "unknown"
        counts = self.per_source.get(name)
        if counts is None:
            counts = self.per_source[name] = SourceCounts()
        return counts

    def kept(self, row: Mapping[str, Any]) -> None:
        self.rows_in += 1
        self.rows_out += 1
        counts = self._source(row)
        counts.rows_in += 1
        counts.rows_out += 1

    def dropped(self, rejected: Rejected) -> None:
        reasons = rejected.reasons or ["unspecified"]
        self.rows_in += 1
        self.rejected += 1
        self.reasons[reasons[0]] += 1
        self.other.update(dict.fromkeys(reasons[1:], 1))
        counts = self._source(rejected.row)
        counts.rows_in += 1
        counts.rejected += 1
        counts.reasons[reasons[0]] = counts.reasons.get(reasons[0], 0) + 1

    def add(self, kept: Sequence[Any], rejected: Sequence[Rejected], inputs: Sequence[Mapping[str, Any]] | None = None,
            ) -> None:
        if inputs is not None:  # an expanding stage: inputs in, kept rows out
            for row in inputs:
                self.rows_in += 1
                self._source(row).rows_in += 1
            for row in kept:
                self.rows_out += 1
                self._source(row).rows_out += 1
            kept = []
        for row in kept:
            self.kept(row)
        for r in rejected:
            self.dropped(r)

    def counts(self) -> dict[str, Any]:
        return {"rows_in": self.rows_in, "rows_out": self.rows_out, "rejected": self.rejected,
                "reasons": dict(self.reasons.most_common()), "other_reasons": dict(self.other.most_common()),
                "per_source": dict(sorted(self.per_source.items()))}


# ---------------------------------------------------------------- the batch a stage works on


@dataclass(frozen=True)
class FileInput:
    """A file a stage reads beside its main input (the questions file, the reviews file)."""

    help: str
    required: bool = False
    flag: str | None = None


@dataclass
class Batch:
    """What `process` works on: the input's rows, where each came from, the named input files, the progress callback."""

    rows: list[dict[str, Any]]
    locs: list[int]
    path: Path | None
    files: dict[str, Path | None]
    progress: Progress = no_progress
    skip_invalid: bool = False

    def where(self, i: int) -> dict[str, int]:
        """Location of row i for an InputError (`line=` or `row=`)."""
        if self.path is None:
            return {"row": i}
        return location(self.path, self.locs[i])


@dataclass
class Outcome:
    """What `process` returns: the kept rows (in order), the rejected ones, and the stage's own report fields."""

    kept: list[Any]
    rejected: list[Rejected] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: For a stage whose output rows are not its input rows (generate: traces from questions): the rows it worked
    #: on, counted as `rows_in`; the kept rows are then only `rows_out`.
    inputs: list[dict[str, Any]] | None = None


@dataclass
class Judgement:
    """One row's fate in a per-row stage: kept or not, its reason codes, the columns it gains, a human detail."""

    kept: bool
    columns: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    detail: str = ""


C = TypeVar("C", bound=StageConfig)
R = TypeVar("R", bound=StageReport)


class Stage(Generic[C, R]):
    """One stage: `Config` (options), `Report` (what it says), `Columns` (what it adds), `process` (the work)."""

    name: ClassVar[str]
    Config: ClassVar[type[StageConfig]]
    Report: ClassVar[type[StageReport]]
    Columns: ClassVar[type[BaseModel] | None] = None
    #: Files it reads beside the main input, by keyword: {"questions": FileInput(...)}.
    files: ClassVar[dict[str, FileInput]] = {}
    #: False for a stage with no input table (sources).
    reads_input: ClassVar[bool] = True
    #: Rows of the main input are validated as this record (None: any row; `check_row` may still refuse one).
    record: ClassVar[type[BaseModel] | None] = None
    #: Hand `process` the rows as the record writes them (its defaults filled in) rather than as read.
    normalise_rows: ClassVar[bool] = False

    def __init__(self, config: C | None = None, **options: Any) -> None:
        if config is not None and options:
            raise TypeError("give a config or options, not both")
        self.config: C = config if config is not None else make_config(self.Config, options)

    # ------------------------------------------------------------ the parts a stage may override

    def check_row(self, row: dict[str, Any]) -> tuple[str, str] | None:
        """(field, what was expected) when a row cannot be processed; None when it can."""
        return None

    def process(self, batch: Batch) -> Outcome:
        raise NotImplementedError

    def write_outputs(self, outcome: Outcome, output: Path, rejected: Path | None) -> None:
        """The rejected side file (when asked for) and the output, each atomic."""
        if rejected is not None:
            write_rows([r.as_row(self.name) for r in outcome.rejected], rejected)
        write_rows(outcome.kept, output)

    def output_kind(self) -> str:
        """"table" (Parquet or JSONL, by extension) or "folder" (publish)."""
        return "table"

    def preflight(self) -> None:
        """Checks of what the stage needs beyond its input (benchmark files, a model), cheap enough to run before a
        pipeline starts its first stage: a problem raises ConfigError now, not after hours of generation."""

    def allowed_incomplete(self, rows_out: int) -> int:
        """How many unfinished output rows (`Report.incomplete`) the stage may end with and still succeed."""
        return 0

    def incomplete_message(self, report: Any) -> str:
        return (f"{self.name}: {report.incomplete} of {report.rows_out} rows could not be finished; what was finished "
                "is kept: run the same command again to retry the rest")

    # ------------------------------------------------------------ written once

    @classmethod
    def invoke(cls, input: str | os.PathLike[str] | None, output: str | os.PathLike[str] | None, *,
               rejected: str | os.PathLike[str] | None = None, report: str | os.PathLike[str] | None = None,
               progress: Progress | None = None, skip_invalid: bool = False, **options: Any) -> Any:
        """The stage as one function: options are the config's fields, files are the stage's named inputs."""
        files = {name: options.pop(name) for name in list(options) if name in cls.files}
        return cls(make_config(cls.Config, options, origin=f"{cls.name}: ")).run(
            input, output, rejected=rejected, report=report, progress=progress, skip_invalid=skip_invalid, **files)

    def run(self, input: str | os.PathLike[str] | None, output: str | os.PathLike[str] | None, *,
            rejected: str | os.PathLike[str] | None = None, report: str | os.PathLike[str] | None = None,
            progress: Progress | None = None, skip_invalid: bool = False,
            **files: str | os.PathLike[str] | None) -> R:
        started = time.perf_counter()
        paths = self._check_paths(input, output, rejected, report, files)
        input_path, output_path, rejected_path, report_path = paths
        file_paths = {name: Path(p) if p is not None else None for name, p in files.items()}
        for name, spec in self.files.items():
            file_paths.setdefault(name, None)
            if spec.required and file_paths[name] is None:
                raise ConfigError(f"{self.name}: {spec.flag or '--' + name.replace('_', '-')} is required ({spec.help})")
            if file_paths[name] is not None and not file_paths[name].exists():
                raise InputError(file_paths[name], "file not found")
        rows, locs, invalid = self._read(input_path, skip_invalid) if self.reads_input else ([], [], [])
        warnings = []
        if self.reads_input and not rows and not invalid:
            warnings.append(f"{input_path} has no rows")
        batch = Batch(rows=rows, locs=locs, path=input_path, files=file_paths, progress=progress or no_progress,
                      skip_invalid=skip_invalid)
        outcome = self.process(batch)
        tally = Tally()
        tally.add(outcome.kept, [*invalid, *outcome.rejected], outcome.inputs)
        warnings += outcome.warnings
        if tally.rows_in and not tally.rows_out:
            top = ", ".join(f"{k} {v}" for k, v in tally.reasons.most_common(3))
            warnings.append(f"kept 0 of {tally.rows_in} rows" + (f" (top reasons: {top})" if top else ""))
        outcome.rejected = [*invalid, *outcome.rejected]
        self.write_outputs(outcome, output_path, rejected_path)
        result = self.Report(stage=self.name, **tally.counts(), **outcome.stats, warnings=warnings,
                             wall_s=round(time.perf_counter() - started, 3))
        if report_path is not None:
            result.write(report_path)
        if result.incomplete > self.allowed_incomplete(result.rows_out):
            error = StageFailed(self.incomplete_message(result))
            error.report = result  # type: ignore[attr-defined]
            raise error
        return result  # type: ignore[return-value]

    def _check_paths(self, input: Any, output: Any, rejected: Any, report: Any,
                     files: dict[str, Any]) -> tuple[Path | None, Path, Path | None, Path | None]:
        input_path = Path(input) if input is not None else None
        output_path = Path(output) if output is not None else None
        rejected_path = Path(rejected) if rejected is not None else None
        report_path = Path(report) if report is not None else None
        if output_path is None and self.output_kind() == "table":
            raise ConfigError(f"{self.name}: an output path is required")
        if input_path is not None and not input_path.exists():
            raise InputError(input_path, "file not found")
        if input_path is not None:
            table_format(input_path)
        reads = [p for p in (input_path, *(Path(f) for f in files.values() if f is not None)) if p is not None]
        writes = [(kind, p) for kind, p in (("output", output_path), ("--rejected", rejected_path),
                                            ("--report", report_path)) if p is not None]
        for kind, target in writes:
            for source in reads:
                if same_file(source, target):
                    raise ConfigError(f"{self.name}: {kind} {target} is the input file {source}: choose another path "
                                      "(the input would be overwritten)")
        for i, (kind, a) in enumerate(writes):
            for other, b in writes[i + 1:]:
                if same_file(a, b):
                    raise ConfigError(f"{self.name}: {kind} and {other} are the same file {a}")
        if output_path is not None and self.output_kind() == "table":
            table_format(output_path)  # an unknown extension is refused before any work
        if rejected_path is not None:
            table_format(rejected_path)
        for _, target in writes:
            if self.output_kind() == "folder" and target is output_path:
                continue
            remove_stale_temps(target)
            check_writable(target)
        return input_path, output_path, rejected_path, report_path  # type: ignore[return-value]

    def _read(self, path: Path | None, skip_invalid: bool) -> tuple[list[dict[str, Any]], list[int], list[Rejected]]:
        rows: list[dict[str, Any]] = []
        locs: list[int] = []
        invalid: list[Rejected] = []
        if path is None:
            return rows, locs, invalid
        first_at: dict[str, int] = {}  # a row's key -> where it first stood: a repeated key is refused, both named
        for loc, row in iter_rows(path):
            try:
                row = self._validate(path, loc, row)
                key_name = "trace_id" if "trace_id" in row else "id"
                key = row.get(key_name)
                if isinstance(key, str):
                    if key in first_at:
                        first = "line" if table_format(path) == "jsonl" else "row"
                        raise InputError(path, f"duplicate {key_name} (first at {first} {first_at[key]})",
                                         record_id=key, field=key_name, **location(path, loc))
                    first_at[key] = loc
                rows.append(row)
                locs.append(loc)
            except InputError as error:
                if not skip_invalid:
                    raise
                invalid.append(Rejected(row=self.invalid_row(row), reasons=[INVALID_INPUT], detail=str(error)))
        return rows, locs, invalid

    def _validate(self, path: Path, loc: int, row: dict[str, Any]) -> dict[str, Any]:
        """The row, checked (and normalised when the stage asks for it); an InputError naming where and what."""
        try:
            if self.record is not None:
                model = self.record.model_validate(row)
                if self.normalise_rows:
                    row = model.model_dump(mode="json")
            RowQuestionColumns.model_validate(row)  # whatever the stage: the question's columns have their types
            if "trace_id" in row:  # and a trace's own columns theirs
                RowTraceColumns.model_validate(row)
        except ValidationError as exc:
            raise validation_error(path, loc, row, exc) from None
        bad = self.check_row(row)
        if bad is not None:
            name, expected = bad
            raise InputError(path, expected, record_id=row.get("trace_id") or row.get("id"), field=name,
                             **location(path, loc))
        return row

    def invalid_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """What of an invalid row goes to the rejected side file (all of it, unless the stage must not pass it on)."""
        return row


class RowStage(Stage[C, R]):
    """A stage that judges each row on its own: implement `judge_rows` (a batch at a time, so engines can batch)."""

    #: Rows per chunk handed to `judge_rows` (and to a worker process).
    chunk_rows: ClassVar[int] = 1000
    #: Below this many rows a process pool costs more than it saves.
    min_parallel: ClassVar[int] = 5000

    def workers(self) -> int:
        from curate.parallel import resolve_workers

        return resolve_workers(int(getattr(self.config, "workers", 1) or 0))

    def chunk_size(self) -> int:
        return self.chunk_rows

    def prepare(self, batch: Batch) -> None:
        """Per-run set-up before judging (read a side file, build an engine): forked workers inherit it."""

    def judge_rows(self, rows: Sequence[dict[str, Any]]) -> list[Judgement]:
        raise NotImplementedError

    def process(self, batch: Batch) -> Outcome:
        self.prepare(batch)
        judgements = self.judge_all(batch.rows, batch.progress)
        return self.decide(batch, judgements)

    def judge_all(self, rows: list[dict[str, Any]], progress: Progress) -> list[Judgement]:
        """Judge every row, in a process pool for large inputs; in input order."""
        from curate.parallel import chunked, ordered_map

        chunks = chunked(rows, self.chunk_size())
        workers = self.workers() if len(rows) >= self.min_parallel and len(chunks) > 1 else 1
        out: list[Judgement] = []
        progress("judge", 0, len(rows))
        with _stage_for_workers(self):
            for judged in ordered_map(_judge_in_worker, chunks, workers=workers):
                out.extend(judged)
                progress("judge", len(out), len(rows))
        return out

    def decide(self, batch: Batch, judgements: list[Judgement]) -> Outcome:
        """Kept rows gain their columns; the others go to the rejected side with theirs."""
        kept, rejected = [], []
        for row, j in zip(batch.rows, judgements):
            out = {**row, **j.columns}
            if j.kept:
                kept.append(out)
            else:
                rejected.append(Rejected(row=out, reasons=list(j.reasons), detail=j.detail))
        return Outcome(kept=kept, rejected=rejected)


_WORKER_STAGE: RowStage[Any, Any] | None = None


@contextlib.contextmanager
def _stage_for_workers(stage: RowStage[Any, Any]) -> Iterator[None]:
    """Make `stage` the one forked workers judge with (they inherit it, with what `prepare` built)."""
    global _WORKER_STAGE
    previous, _WORKER_STAGE = _WORKER_STAGE, stage
    try:
        yield
    finally:
        _WORKER_STAGE = previous


def _judge_in_worker(rows: Sequence[dict[str, Any]]) -> list[Judgement]:
    assert _WORKER_STAGE is not None, "no stage set for the workers"
    return _WORKER_STAGE.judge_rows(rows)


__all__ = ["Batch", "ConfigError", "FileInput", "INVALID_INPUT", "Judgement", "Outcome", "OutputError", "RowStage",
           "SourceCounts", "Stage", "StageConfig", "StageError", "StageFailed", "StagePending", "StageReport", "Tally",
           "make_config", "option"]
