"""`curate run`: chain the stages in a run directory, one file per stage plus `manifest.json`, resuming from the
last finished stage.

A stage counts as finished when the manifest says `done`, its output is there with the recorded sha256, and the
fingerprint it was produced from (its arguments minus volatile ones, the hashes of its input files and of any
external files it reads) equals the one computed now. So a changed config section or a changed input re-runs that
stage, and every later stage whose input then changes. The manifest is rewritten atomically before and after each
stage: a crash (even SIGKILL) mid-stage leaves the earlier stages finished, and stage outputs are themselves
written atomically by the stages. A partly done `generate` resumes cheaply from its own request cache.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import os
import platform
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from curate.io import file_lock, remove_stale_temps, write_json
from curate.pipeline.config import ConfigError, PipelineConfig
from curate.pipeline.rundir import MANIFEST, count_rows, read_manifest, sha256_path
from curate.pipeline.stages import STAGES, StageContext, Step, stage_named
from curate.records import stable_hash

#: Distributions whose versions the manifest records (looked up in metadata: nothing is imported).
VERSIONED = ("pydantic", "polars", "pyarrow", "datasets", "huggingface_hub", "openai", "transformers", "torch",
             "vllm", "datasketch", "rapidfuzz", "presidio-analyzer", "spacy", "argilla", "trl", "peft")

MANIFEST_FORMAT = 1


class PipelineError(RuntimeError):
    """A stage failed; the message names it. Earlier stages stay finished."""

    def __init__(self, stage: str, message: str, exit_code: int = 1) -> None:
        super().__init__(f"stage {stage} failed: {message}")
        self.stage = stage
        #: 1, or 3 when the teacher could not be reached (what `curate generate` alone exits with for the same cause)
        self.exit_code = exit_code


class NothingLeftError(PipelineError):
    """A stage finished with no rows while later stages were to run: the run stops there, naming it and why."""

    def __init__(self, stage: str, counts: dict[str, Any], later: list[str]) -> None:
        reasons = ", ".join(f"{k} {v}" for k, v in list((counts.get("reasons") or {}).items())[:3])
        RuntimeError.__init__(self, f"stage {stage} kept no rows (of {counts.get('rows_in', 0)} read"
                                    f"{': ' + reasons if reasons else ''}): nothing is left for {', '.join(later)}, so "
                                    f"the run stops here")
        self.stage, self.exit_code = stage, 1


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    import curate

    versions = {"python": platform.python_version(), "curate": getattr(curate, "__version__", "unknown")}
    for name in VERSIONED:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return versions


_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def redact(value: Any) -> Any:
    """Config values as they may be written to files: no user:password in URLs (keys belong in the environment)."""
    if isinstance(value, str):
        return _USERINFO.sub("***@", value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _relative(value: Any, run_dir: Path) -> Any:
    """Paths inside the run dir written relative to it, so a moved run dir keeps its fingerprints."""
    if isinstance(value, Path | str) and str(value).startswith(str(run_dir)):
        return "RUNDIR" + str(value)[len(str(run_dir)):]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _relative(v, run_dir) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_relative(v, run_dir) for v in value]
    return value


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """One `curate run` per run dir at a time (the lock dies with the process, even on SIGKILL). A run dir that
    cannot be made or written (read-only, a file) is one located `OutputError`."""
    with file_lock(run_dir / ".lock", ConfigError(f"{run_dir}: another `curate run` is using this run directory")):
        yield


class Runner:
    def __init__(self, config: PipelineConfig, run_dir: Path, stages: tuple[Step, ...] = STAGES,
                 echo: Callable[[str], None] = print, display: Any = None) -> None:
        self.config, self.run_dir, self.stages, self.echo = config, Path(run_dir), stages, echo
        self.display = display
        self.enabled = [s for s in stages if s.enabled(config)]
        self.manifest = self._load_manifest()
        self._memo: dict[Path, str] | None = None  # file hashes, kept only while the stale check runs

    # -------------------------------------------------------------- manifest

    def _load_manifest(self) -> dict[str, Any]:
        old = read_manifest(self.run_dir) or {}
        manifest = {"format": MANIFEST_FORMAT, "created": old.get("created", now()), "updated": now(),
                    "config": redact(self.config.as_dict()), "versions": package_versions(),
                    "order": [s.name for s in self.stages], "stages": old.get("stages", {})}
        return manifest

    def save(self) -> None:
        self.manifest["updated"] = now()
        write_json(self.manifest, self.run_dir / MANIFEST)

    # -------------------------------------------------------------- step plumbing

    def _by_name(self, name: str) -> Step:
        return stage_named(name, self.stages)

    def source_of(self, name: str) -> Step:
        """The step whose output stands for `name`'s output: itself, or (when disabled) what it would have read."""
        step = self._by_name(name)
        while not step.enabled(self.config):
            if step.input is None:
                raise ConfigError(f"stage {step.name} is disabled and nothing stands in for it")
            step = self._by_name(step.input)
        return step

    def context(self, step: Step) -> StageContext:
        main = self.output_of(self.source_of(step.input)) if step.input else None
        files = {keyword: self.output_of(self.source_of(name)) for keyword, name in step.files.items()}
        return StageContext(run_dir=self.run_dir, config=self.config, input=main, files=files,
                            output=self.output_of(step), rejected=self.run_dir / f"{step.name}.rejected.parquet",
                            report=self.run_dir / f"{step.name}.report.json")

    def output_of(self, step: Step) -> Path:
        return step.resolve_output(self.config, self.run_dir)

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.run_dir) if str(path).startswith(str(self.run_dir)) else str(path)

    def inputs_of(self, ctx: StageContext) -> list[Path]:
        return [p for p in (ctx.input, *ctx.files.values()) if p is not None]

    def fingerprint(self, step: Step, ctx: StageContext, binding: Any) -> tuple[str, dict[str, str], dict[str, str]]:
        """What the output depends on: the stage's options and the step's parameters (volatile ones left out), the
        hashes of its run-dir inputs and of the files outside the run dir it reads (source and benchmark files)."""
        for path in self.inputs_of(ctx):
            if not path.exists():
                raise ConfigError(f"stage {step.name} needs {path}, which an earlier stage writes: run without --from")
        inputs = {self.rel(p): self._sha(p) for p in self.inputs_of(ctx)}
        external = {str(p): self._sha(p) for p in step.external(self.config) if p.exists()}
        arguments = {"config": binding.config.non_volatile(),
                     "step": {k: v for k, v in binding.extras.items() if k not in binding.volatile}}
        return stable_hash(step.name, _relative(arguments, self.run_dir), inputs, external, length=32), inputs, external

    def _sha(self, path: Path) -> str:
        """sha256 of a file or folder; while the stale check runs (nothing is written then), each path once."""
        memo = self._memo
        if memo is None:
            return sha256_path(path)
        if path not in memo:
            memo[path] = sha256_path(path)
        return memo[path]

    def finished(self, step: Step, fingerprint: str) -> bool:
        entry = self.manifest["stages"].get(step.name) or {}
        output = self.output_of(step)
        # A stage that ended with rows it could not finish (failed teacher requests) is not finished: the next run
        # retries exactly those (finished responses come from the cache).
        # A stale one (an earlier stage changed, then changed back) is finished when its fingerprint and output match.
        return (entry.get("status") in ("done", "stale") and not entry.get("incomplete")
                and entry.get("fingerprint") == fingerprint and output.exists()
                and entry.get("output", {}).get("sha256") == sha256_path(output))

    # -------------------------------------------------------------- the run

    def select(self, until: str | None, start: str | None) -> list[Step]:
        names = [s.name for s in self.enabled]
        for flag, name in (("--until", until), ("--from", start)):
            if name is not None and name not in names:
                state = "disabled in the config" if name in [s.name for s in self.stages] else "not a stage"
                raise ConfigError(f"{flag} {name}: {state}; stages of this run: {', '.join(names)}")
        last = names.index(until) if until else len(names) - 1
        if start and names.index(start) > last:
            raise ConfigError(f"--from {start} comes after --until {until}")
        return self.enabled[: last + 1]

    def check(self, selected: list[Step]) -> dict[str, Any]:
        """Every selected step's stage and options, and every file outside the run dir it reads, checked before
        anything runs: a bad option or a missing benchmark file is named now, not after hours of generation."""
        bindings = {}
        for step in selected:
            step.stage_class()
            if step.execute:
                step.executor()
            try:
                bindings[step.name] = step.binding(self.context(step))
                step.stage_class()(bindings[step.name].config).preflight()
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"[{step.name}]: {exc} (checked before the first stage: nothing was run)") from None
            for path in step.external(self.config):
                if not path.exists():
                    raise ConfigError(f"[{step.name}]: {path} does not exist (named in the config); nothing was run")
        return bindings

    def run(self, *, until: str | None = None, start: str | None = None) -> dict[str, Any]:
        selected = self.select(until, start)
        forced_from = [s.name for s in self.enabled].index(start) if start else None
        with run_lock(self.run_dir):
            remove_stale_temps(self.run_dir / MANIFEST)  # a killed run's half-written manifest (stages clean their own)
            for step in self.stages:
                if not step.enabled(self.config):
                    self.manifest["stages"][step.name] = {"status": "skipped", "reason": "disabled in the config"}
            bindings = self.check(selected)
            self.save()
            try:
                for index, step in enumerate(selected):
                    ctx = self.context(step)
                    if forced_from is not None and index < forced_from:
                        self._require_output(step, ctx)
                        self.echo(f"- {step.name}: kept (before --from {start})")
                        continue
                    fingerprint, inputs, external = self.fingerprint(step, ctx, bindings[step.name])
                    if forced_from is None and self.finished(step, fingerprint):
                        self.manifest["stages"][step.name].update(status="done", error=None)  # stale no more
                        self.echo(f"- {step.name}: finished earlier, reused")
                    else:
                        self._run_stage(step, ctx, bindings[step.name], fingerprint, inputs, external)
                    self._require_rows(step, [s.name for s in selected[index + 1:]])
            finally:  # a failed or interrupted run too: what it left behind must not pass for this run's
                self._mark_stale()
                self.save()
        return self.manifest

    def _require_rows(self, step: Step, later: list[str]) -> None:
        """Stop before the later stages when this one left no rows: they would run on nothing and the last would fail
        with a message about itself, not about the stage that lost everything."""
        entry = self.manifest["stages"][step.name]
        if later and (entry.get("output") or {}).get("rows") == 0:
            raise NothingLeftError(step.name, entry.get("counts") or {}, later)

    def _require_output(self, step: Step, ctx: StageContext) -> None:
        entry = self.manifest["stages"].get(step.name) or {}
        if entry.get("status") != "done" or not ctx.output.exists():
            raise ConfigError(f"--from: stage {step.name} has not finished in {self.run_dir}; run without --from first")

    def _progress(self, step: Step) -> Any:
        from curate.progress import no_progress

        return self.display.callback(step.name) if self.display is not None else no_progress

    def _call(self, step: Step, ctx: StageContext, binding: Any) -> Any:
        executor = step.executor()
        if executor is not None:
            return executor(ctx, binding, self._progress(step))
        stage = step.stage_class()(binding.config)
        return stage.run(ctx.input, ctx.output, rejected=ctx.rejected, report=ctx.report, progress=self._progress(step),
                         **ctx.files, **binding.files)

    def _run_stage(self, step: Step, ctx: StageContext, binding: Any, fingerprint: str, inputs: dict[str, str],
                   external: dict[str, str]) -> None:
        from curate.generate.backends import GenerateError
        from curate.stage import StageFailed, StagePending

        entry: dict[str, Any] = {"status": "running", "fingerprint": fingerprint, "inputs": inputs, "external": external,
                                 "started": now(),
                                 "arguments": redact(_relative({"config": binding.config.model_dump(mode="json"),
                                                                **binding.extras}, self.run_dir))}
        earlier = (self.manifest["stages"].get(step.name) or {})
        if earlier.get("output") or earlier.get("previous_output"):  # what this stage wrote last time, and its hash:
            entry["previous_output"] = earlier.get("output") or earlier.get("previous_output")  # publish may vouch
        self.manifest["stages"][step.name] = entry
        self.save()
        self.echo(f"> {step.name}: running")
        for stale in (ctx.report, ctx.rejected):  # side files of an earlier attempt must not pass for this one's
            stale.unlink(missing_ok=True)
        started = time.perf_counter()
        try:
            report = self._call(step, ctx, binding)
        except StagePending as exc:
            entry.update(status="waiting", error=str(exc), wall_s=round(time.perf_counter() - started, 3))
            self.save()
            raise
        except StageFailed as exc:  # it wrote what it could: the manifest keeps its counts for the report and card
            report = getattr(exc, "report", None)
            entry.update(status="failed", error=str(exc), finished=now(), wall_s=round(time.perf_counter() - started, 3))
            if report is not None:
                entry.update(counts=self._counts(report), incomplete=report.incomplete, warnings=list(report.warnings),
                             report=self.rel(ctx.report) if ctx.report.exists() else None)
                for warning in report.warnings:  # what it noticed may be why it failed
                    self.echo(f"  warning: {warning}")
            self.save()
            raise PipelineError(step.name, str(exc)) from exc
        except BaseException as exc:  # KeyboardInterrupt too: the manifest says how the stage ended
            entry.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:2000], finished=now(),
                         wall_s=round(time.perf_counter() - started, 3))
            self.save()
            if isinstance(exc, Exception):
                # the teacher could not be reached: the code `curate generate` alone exits with (the table in
                # docs/architecture.md); every other failure of a stage is 1
                unreachable = isinstance(exc, GenerateError) and exc.exit_code == GenerateError.exit_code
                raise PipelineError(step.name, f"{type(exc).__name__}: {exc}",
                                    GenerateError.exit_code if unreachable else 1) from exc
            raise
        wall = round(time.perf_counter() - started, 3)
        if not ctx.output.exists():
            entry.update(status="failed", error="the stage wrote no output", finished=now(), wall_s=wall)
            self.save()
            raise PipelineError(step.name, f"it returned but wrote no {ctx.output}")
        if not ctx.report.exists():
            report.write(ctx.report)
        entry.update(status="done", finished=now(), wall_s=wall, counts=self._counts(report),
                     incomplete=report.incomplete, warnings=list(report.warnings),
                     output={"path": self.rel(ctx.output), "sha256": sha256_path(ctx.output), "rows": count_rows(ctx.output)},
                     report=self.rel(ctx.report), rejected=self.rel(ctx.rejected) if ctx.rejected.exists() else None,
                     error=None)
        self.save()
        line = f"✓ {step.name}: {entry['output']['rows']} rows in {wall:.1f}s"
        if report.rejected:
            line += f" ({report.rejected} rejected: " + ", ".join(f"{k} {v}" for k, v in list(report.reasons.items())[:3]) + ")"
        if report.incomplete:
            line += f"; {report.incomplete} unfinished (the next run retries them)"
        self.echo(line)
        for detail in report.details():
            self.echo(f"  {detail}")
        for warning in report.warnings:
            self.echo(f"  warning: {warning}")

    @staticmethod
    def _counts(report: Any) -> dict[str, Any]:
        return {k: getattr(report, k) for k in ("rows_in", "rows_out", "rejected", "reasons")}

    def _mark_stale(self) -> None:
        """Finished stages that are not this config's anymore become `stale`: a stage whose config section, input
        files or external files changed since it ran, and every stage after one that is not current (failed,
        interrupted, stale, not run), however unchanged its own input file looks. The report and the summary then
        show their files as an earlier run's, and the next run runs them again (or finds them current again)."""
        self._memo = {}
        try:
            self._check_current()
        finally:
            self._memo = None

    def _check_current(self) -> None:
        current: set[str] = set()
        for step in self.enabled:
            entry = self.manifest["stages"].get(step.name) or {}
            if entry.get("status") not in ("done", "stale"):
                continue
            upstream = [self.source_of(name).name for name in (step.input, *step.files.values()) if name]
            behind = next((name for name in upstream if name not in current), None)
            reason = None
            if behind is not None:
                status = (self.manifest["stages"].get(behind) or {}).get("status", "not run")
                reason = f"stage {behind} before it is {status} in this run: its files are an earlier run's"
            else:
                reason = self._changed_since(step, entry)
            if reason is None and entry.get("status") == "done":
                current.add(step.name)
            elif reason is not None:
                entry.update(status="stale", error=reason)
            # a stale entry whose cause went away stays stale until a run reuses it (its output is checked then)

    def _changed_since(self, step: Step, entry: dict[str, Any]) -> str | None:
        """Why a finished stage's recorded fingerprint is not what its config and files give now (None: it is)."""
        for rel, digest in (entry.get("inputs") or {}).items():
            path = Path(rel) if Path(rel).is_absolute() else self.run_dir / rel
            if not path.exists() or self._sha(path) != digest:
                return f"its input {rel} changed since it ran"
        try:
            ctx = self.context(step)
            fingerprint, _, _ = self.fingerprint(step, ctx, step.binding(ctx))
        except (ValueError, TypeError):  # ConfigError too: a section that no longer binds is not this config's
            return "its config section changed since it ran"
        if fingerprint != entry.get("fingerprint"):
            return "its config section or a file it reads changed since it ran"
        return None


def run_pipeline(config: PipelineConfig, *, run_dir: Path | None = None, until: str | None = None,
                 start: str | None = None, stages: tuple[Step, ...] = STAGES,
                 echo: Callable[[str], None] = print, display: Any = None) -> dict[str, Any]:
    """Run (or resume) the pipeline; returns the manifest. `start` is `--from`: that stage and every later one run
    again even if finished, earlier ones must have finished. `display` (a `curate.progress.ProgressDisplay`) draws
    each stage's progress."""
    run_dir = Path(run_dir or config.run.dir or "runs/run").absolute()
    return Runner(config, run_dir, stages, echo, display).run(until=until, start=start)
