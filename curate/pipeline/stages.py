"""The pipeline's step table: ONE place that says, per step, which stage runs it, which run-dir files it reads and
writes, and how its config section becomes the stage's config.

A step's stage is named "module:Class" and imported only when the run is checked, so `curate --help` stays fast.
Its config section IS the stage's config class (plus `enabled` for optional steps), so a section holds exactly the
options the stage has; the few run-only keys (review's Argilla settings, publish's folder) are the step's own.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.pipeline.config import ConfigError, PipelineConfig
from curate.stage import StageConfig


@dataclass(frozen=True)
class StageContext:
    """What a step's binding sees: the config and the resolved paths in the run directory."""

    run_dir: Path
    config: PipelineConfig
    input: Path | None
    files: dict[str, Path]
    output: Path
    rejected: Path
    report: Path


@dataclass(frozen=True)
class Binding:
    """A step's call: the stage's config, and the run-only parameters the step itself uses (fingerprinted too)."""

    config: StageConfig
    extras: dict[str, Any] = field(default_factory=dict)
    #: run-only parameters that do not change the output (left out of the fingerprint)
    volatile: frozenset[str] = frozenset()
    #: named input files that are not step outputs (publish reads the run dir itself): not fingerprinted
    files: dict[str, Path] = field(default_factory=dict)


def _always(config: PipelineConfig) -> bool:
    return True


def _no_files(config: PipelineConfig) -> list[Path]:
    return []


def section_config(stage_config: type[StageConfig], section: Any, **overrides: Any) -> StageConfig:
    """The stage's own config from its TOML section (which may carry `enabled` and run-only keys)."""
    data = {k: v for k, v in section.model_dump().items() if k in stage_config.model_fields}
    data.update(overrides)
    return stage_config(**data)


@dataclass(frozen=True)
class Step:
    name: str
    #: "module:Class" of the stage (lazily imported)
    stage: str
    #: file (or folder) name in the run dir
    output: str
    #: the step whose output is the main input (None for sources); a disabled step stands for its own input
    input: str | None
    #: the stage's named input files: keyword -> the step whose output it is
    files: dict[str, str] = field(default_factory=dict)
    #: the stage's config (and run-only parameters) from the run config
    bind: Callable[[StageContext], Binding] | None = None
    enabled: Callable[[PipelineConfig], bool] = _always
    #: files outside the run dir it reads (source files, benchmark files): their hashes join its fingerprint
    external: Callable[[PipelineConfig], list[Path]] = _no_files
    #: where the output goes when not in the run dir (publish's local_dir)
    output_path: Callable[[PipelineConfig, Path], Path] | None = None
    #: runs the step instead of the stage's own `run` (review: push and pull first)
    execute: str | None = None

    def resolve_output(self, config: PipelineConfig, run_dir: Path) -> Path:
        return self.output_path(config, run_dir) if self.output_path else run_dir / self.output

    def stage_class(self) -> Any:
        return _load(self.name, self.stage)

    def binding(self, ctx: StageContext) -> Binding:
        if self.bind is not None:
            return self.bind(ctx)
        stage = self.stage_class()
        return Binding(section_config(stage.Config, ctx.config.section(self.name)))

    def executor(self) -> Callable[..., Any] | None:
        return _load(self.name, self.execute) if self.execute else None


def _load(step: str, target: str) -> Any:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"stage {step}: cannot import {module_name} ({exc}); is that stage installed?") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"stage {step}: {module_name} has no {attr}") from None


# ---------------------------------------------------------------- bindings: where a step differs from its section


def _sources(ctx: StageContext) -> Binding:
    from sources.stage import SourcesConfig

    return Binding(SourcesConfig(sources=list(ctx.config.sources)))


def _source_files(config: PipelineConfig) -> list[Path]:
    return [Path(s.path) for s in config.sources if s.path]


def _generate(ctx: StageContext) -> Binding:
    from curate.generate.config import GenerateConfig

    g, run = ctx.config.generate, ctx.config.run
    return Binding(section_config(GenerateConfig, g, seed=run.seed if g.seed is None else g.seed,
                                  cache_dir=g.cache_dir or ctx.run_dir / "generate-cache"))


def _replay_file(config: PipelineConfig) -> list[Path]:
    return [Path(config.generate.replay)] if config.generate.replay else []


def _verify(ctx: StageContext) -> Binding:
    from curate.verify.config import VerifyConfig

    v = ctx.config.verify
    return Binding(section_config(VerifyConfig, v, cache_dir=v.cache_dir or ctx.run_dir / "verify-cache"))


def _verify_enabled(config: PipelineConfig) -> bool:
    return config.verify is not None and config.verify.enabled


def _benchmark_files(config: PipelineConfig) -> list[Path]:
    return [Path(p) for p in config.decontaminate.benchmark_paths.values()]


def _review(ctx: StageContext) -> Binding:
    from review.apply import ReviewApplyConfig
    from review.push import PushConfig

    r = ctx.config.review
    push = {k: getattr(r, k) for k in PushConfig.model_fields if k != "stratify"}
    push["seed"] = ctx.config.run.seed if r.seed is None else r.seed
    return Binding(section_config(ReviewApplyConfig, r), {**push, "reviews": r.reviews},
                   volatile=frozenset({"api_url"}))


def _review_files(config: PipelineConfig) -> list[Path]:
    return [config.review.reviews] if config.review.reviews else []


def _publish(ctx: StageContext) -> Binding:
    from curate.publish import PublishConfig

    return Binding(section_config(PublishConfig, ctx.config.publish), files={"run_dir": ctx.run_dir})


def _publish_dir(config: PipelineConfig, run_dir: Path) -> Path:
    return (config.publish.local_dir if config.publish else None) or run_dir / "publish"


def _section_enabled(name: str) -> Callable[[PipelineConfig], bool]:
    return lambda config: bool(config.section(name).enabled)


#: The pipeline, in order.
STAGES: tuple[Step, ...] = (
    Step("sources", "sources.stage:SourcesStage", "questions.parquet", None, bind=_sources, external=_source_files),
    Step("generate", "curate.generate.runner:GenerateStage", "traces.parquet", "sources", bind=_generate,
         external=_replay_file),
    Step("filter", "curate.filter:FilterStage", "filtered.parquet", "generate", files={"questions": "sources"}),
    Step("verify", "curate.verify:VerifyStage", "verified.parquet", "filter", bind=_verify, enabled=_verify_enabled),
    Step("dedupe", "curate.dedupe:DedupeStage", "deduped.parquet", "verify", enabled=_section_enabled("dedupe")),
    Step("decontaminate", "curate.decontaminate:DecontaminateStage", "decontaminated.parquet", "dedupe",
         enabled=_section_enabled("decontaminate"), external=_benchmark_files),
    Step("scrub", "curate.scrub.runner:ScrubStage", "scrubbed.parquet", "decontaminate",
         enabled=_section_enabled("scrub")),
    Step("review", "review.apply:ReviewApplyStage", "reviewed.parquet", "scrub", files={"questions": "sources"},
         bind=_review, enabled=_section_enabled("review"), external=_review_files,
         execute="review.stage:review_step"),
    Step("publish", "curate.publish:PublishStage", "publish", "review", bind=_publish,
         enabled=lambda c: c.publish is not None, output_path=_publish_dir),
)

STAGE_NAMES = tuple(s.name for s in STAGES)


def stage_named(name: str, stages: tuple[Step, ...] = STAGES) -> Step:
    for stage in stages:
        if stage.name == name:
            return stage
    raise ConfigError(f"unknown stage {name!r}; stages: {', '.join(s.name for s in stages)}")

