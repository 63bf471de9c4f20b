"""The pipeline's stage table: ONE place that says, per stage, which run-dir files it reads and writes, which entry
point runs it, and how its config section maps onto that entry point's arguments.

Entry points are named "module:function" and imported only when the stage runs (or is checked before the run), so
`curate --help` stays fast and a stage's heavy dependencies load only when needed. Tests swap an entry for a
callable with `dataclasses.replace(stage, entry=fn)`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.pipeline.config import ConfigError, PipelineConfig


@dataclass(frozen=True)
class StageContext:
    """What a stage's argument builder sees: the config and the resolved paths in the run directory."""

    run_dir: Path
    config: PipelineConfig
    inputs: tuple[Path, ...]
    output: Path
    rejected: Path
    report: Path


@dataclass(frozen=True)
class Call:
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def _always(config: PipelineConfig) -> bool:
    return True


def _no_files(config: PipelineConfig) -> list[Path]:
    return []


@dataclass(frozen=True)
class Stage:
    name: str
    #: stages whose outputs this one reads; the first is the main input. A disabled stage stands for its own input.
    inputs: tuple[str, ...]
    #: file (or folder) name in the run dir
    output: str
    #: "module:function" (lazily imported) or a callable; returns a StageReport (or None)
    entry: str | Callable[..., Any]
    #: maps the config section and paths onto the entry point's arguments
    arguments: Callable[[StageContext], Call]
    enabled: Callable[[PipelineConfig], bool] = _always
    #: files outside the run dir it reads (source files, benchmark files): their hashes join its fingerprint
    external: Callable[[PipelineConfig], list[Path]] = _no_files
    #: arguments that do not change the output (endpoints, concurrency, cache location): left out of the fingerprint
    volatile: frozenset[str] = frozenset()
    #: where the output goes when not in the run dir (publish's local_dir)
    output_path: Callable[[PipelineConfig, Path], Path] | None = None

    def resolve_output(self, config: PipelineConfig, run_dir: Path) -> Path:
        return self.output_path(config, run_dir) if self.output_path else run_dir / self.output

    def load_entry(self) -> Callable[..., Any]:
        if callable(self.entry):
            return self.entry
        module_name, _, attr = self.entry.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"stage {self.name}: cannot import {module_name} ({exc}); is that stage installed?") from None
        try:
            return getattr(module, attr)
        except AttributeError:
            raise ConfigError(f"stage {self.name}: {module_name} has no {attr}") from None

    def check(self, ctx: StageContext) -> tuple[Callable[..., Any], Call]:
        """The entry point and its call, checked against its signature: an unknown config option is named here,
        before any stage runs, not hours later."""
        fn = self.load_entry()
        call = self.arguments(ctx)
        try:
            inspect.signature(fn).bind(*call.args, **call.kwargs)
        except TypeError as exc:
            accepted = ", ".join(p for p in inspect.signature(fn).parameters if p not in ("self",))
            raise ConfigError(f"[{self.name}]: {exc} (its entry point {getattr(fn, '__name__', fn)} accepts: {accepted})") \
                from None
        except ValueError:  # builtins without a signature: nothing to check
            pass
        return fn, call


# ---------------------------------------------------------------- argument builders, one per stage


def _extra(section: Any, *drop: str) -> dict[str, Any]:
    return {k: v for k, v in (section.model_extra or {}).items() if k not in drop}


def _sources_args(ctx: StageContext) -> Call:
    return Call((ctx.output,), dict(sources=[s.model_dump(mode="json") for s in ctx.config.sources],
                                    rejected=ctx.rejected, report=ctx.report))


def _source_files(config: PipelineConfig) -> list[Path]:
    return [Path(s.path) for s in config.sources if s.path]


def _generate_args(ctx: StageContext) -> Call:
    g, run = ctx.config.generate, ctx.config.run
    kwargs: dict[str, Any] = dict(
        teacher=g.teacher, backend=g.resolved_backend(), base_urls=g.base_urls, prompt=g.prompt, samples=g.samples,
        temperature=g.temperature, top_p=g.top_p, max_tokens=g.max_tokens, seed=run.seed if g.seed is None else g.seed,
        concurrency=g.concurrency, cache_dir=g.cache_dir or ctx.run_dir / "generate-cache", report=ctx.report)
    for key in ("rpm", "tpm", "timeout", "max_retries"):
        if getattr(g, key) is not None:
            kwargs[key] = getattr(g, key)
    kwargs.update(g.options)
    return Call((ctx.inputs[0], ctx.output), kwargs)


def _filter_args(ctx: StageContext) -> Call:
    traces, questions = ctx.inputs
    return Call((traces, questions, ctx.output), dict(rejected=ctx.rejected, report=ctx.report, **_extra(ctx.config.filter)))


def _dedupe_args(ctx: StageContext) -> Call:
    d = ctx.config.dedupe
    kwargs = dict(rejected=ctx.rejected, report=ctx.report, **_extra(d))
    if d.threshold is not None:
        kwargs["threshold"] = d.threshold
    return Call((ctx.inputs[0], ctx.output), kwargs)


def _decontaminate_args(ctx: StageContext) -> Call:
    d = ctx.config.decontaminate
    return Call((ctx.inputs[0], ctx.output), dict(benchmarks=list(d.benchmarks), benchmark_paths=dict(d.benchmark_paths) or None,
                                                  rejected=ctx.rejected, report=ctx.report, **_extra(d)))


def _benchmark_files(config: PipelineConfig) -> list[Path]:
    return [Path(p) for p in config.decontaminate.benchmark_paths.values()]


def _scrub_args(ctx: StageContext) -> Call:
    s = ctx.config.scrub
    return Call((ctx.inputs[0], ctx.output), dict(policy=s.policy, entities=s.entities, allow_no_ner=s.allow_no_ner,
                                                  rejected=ctx.rejected, report=ctx.report, **_extra(s)))


def _review_args(ctx: StageContext) -> Call:
    r, run = ctx.config.review, ctx.config.run
    return Call((ctx.inputs[0], ctx.output), dict(
        dataset=r.dataset, api_url=r.api_url, sample=r.sample, stratify=list(r.stratify),
        reviewers_per_record=r.reviewers_per_record, seed=run.seed if r.seed is None else r.seed, reviews=r.reviews,
        work_dir=ctx.run_dir, questions=ctx.inputs[1], rejected=ctx.rejected, report=ctx.report, **r.options))


def _review_files(config: PipelineConfig) -> list[Path]:
    return [config.review.reviews] if config.review.reviews else []


def _publish_args(ctx: StageContext) -> Call:
    p = ctx.config.publish
    return Call((ctx.inputs[0], ctx.output), dict(repo_id=p.repo_id, private=p.private, force=p.force, push=p.push,
                                                  split_by=p.split_by, run_dir=ctx.run_dir, report=ctx.report))


def _publish_dir(config: PipelineConfig, run_dir: Path) -> Path:
    return config.publish.local_dir or run_dir / "publish"


#: The pipeline, in order. The entry points of generate..scrub and review are the stages' own file-level functions;
#: sources, review and publish go through small adapters in `curate.pipeline.steps`.
STAGES: tuple[Stage, ...] = (
    Stage("sources", (), "questions.parquet", "curate.pipeline.steps:pull_sources", _sources_args,
          external=_source_files),
    Stage("generate", ("sources",), "traces.parquet", "curate.generate:run_generate", _generate_args,
          volatile=frozenset({"base_urls", "concurrency", "cache_dir", "rpm", "tpm", "timeout", "max_retries"})),
    Stage("filter", ("generate", "sources"), "filtered.parquet", "curate.filter:run_filter", _filter_args),
    Stage("dedupe", ("filter",), "deduped.parquet", "curate.dedupe:run_dedupe", _dedupe_args,
          enabled=lambda c: c.dedupe.enabled),
    Stage("decontaminate", ("dedupe",), "decontaminated.parquet", "curate.decontaminate:run_decontaminate",
          _decontaminate_args, enabled=lambda c: c.decontaminate.enabled, external=_benchmark_files),
    Stage("scrub", ("decontaminate",), "scrubbed.parquet", "curate.scrub:run_scrub", _scrub_args,
          enabled=lambda c: c.scrub.enabled),
    Stage("review", ("scrub", "sources"), "reviewed.parquet", "curate.pipeline.steps:review_step", _review_args,
          enabled=lambda c: c.review.enabled, external=_review_files, volatile=frozenset({"api_url", "work_dir"})),
    Stage("publish", ("review",), "publish", "curate.pipeline.steps:publish_step", _publish_args,
          output_path=_publish_dir),
)

STAGE_NAMES = tuple(s.name for s in STAGES)


def stage_named(name: str, stages: tuple[Stage, ...] = STAGES) -> Stage:
    for stage in stages:
        if stage.name == name:
            return stage
    raise ConfigError(f"unknown stage {name!r}; stages: {', '.join(s.name for s in stages)}")
