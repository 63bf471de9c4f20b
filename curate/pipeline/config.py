"""The run config (`curate run CONFIG.toml`): one pydantic model per TOML section, unknown keys rejected.

Relative paths are taken from the directory `curate run` is started in (as every other command does), and string
values may name environment variables as `${VAR}` or `${VAR:-default}`, so one config serves machines whose data
folder differs (`${CURATE_DATA:-../shared/data}`). Secrets never go in the config: keys come from the environment.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


class ConfigError(ValueError):
    """A config problem, located: file, section and key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunSection(Section):
    dir: Path | None = Field(default=None, description="run directory; default runs/<config file stem>")
    seed: int = 0


class SourceSection(Section):
    name: str = Field(description="registered source: medqa, medmcqa, pubmedqa, custom")
    path: str | None = Field(default=None, description="native file or folder; omitted: the Hub copy")
    split: str | None = None
    limit: int | None = Field(default=None, ge=1)
    config: str | None = None
    hub_format: bool = False
    skip_invalid: bool = False
    # custom source only
    mapping: dict[str, str] | None = None
    answer_format: str | None = None
    source_name: str | None = None


class GenerateSection(Section):
    teacher: str
    backend: Literal["openai", "vllm", "transformers"] | None = Field(
        default=None, description="default: openai when base_urls are given, else the embedded transformers backend")
    base_urls: list[str] | None = None
    prompt: str | None = None
    samples: int = Field(default=1, ge=1)
    temperature: float = Field(default=0.7, ge=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_tokens: int = Field(default=2048, ge=1)
    seed: int | None = Field(default=None, description="default: [run] seed")
    concurrency: int = Field(default=64, ge=1)
    cache_dir: Path | None = Field(default=None, description="default: RUNDIR/generate-cache; may be shared by runs")
    rpm: int | None = None
    tpm: int | None = None
    timeout: float | None = None
    max_retries: int | None = None
    options: dict[str, Any] = Field(default_factory=dict, description="further keyword options for run_generate")

    def resolved_backend(self) -> str:
        return self.backend or ("openai" if self.base_urls else "transformers")


class FilterSection(Section):
    # The filter's selection options (keep policy, k per question, length limits) belong to its entry point: they go
    # through as keyword options and an unknown one is refused by name before any stage runs.
    model_config = ConfigDict(extra="allow")


class DedupeSection(Section):
    model_config = ConfigDict(extra="allow")
    enabled: bool = True
    threshold: float | None = Field(default=None, gt=0, le=1)


class DecontaminateSection(Section):
    model_config = ConfigDict(extra="allow")
    enabled: bool = True
    benchmarks: list[str] = Field(default_factory=lambda: ["medqa:test", "medmcqa:dev", "pubmedqa:test"])
    benchmark_paths: dict[str, str] = Field(default_factory=dict, description="{benchmark: local file}")


class ScrubSection(Section):
    model_config = ConfigDict(extra="allow")
    enabled: bool = True
    policy: Literal["redact", "drop"] = "redact"
    entities: list[str] | None = None
    allow_no_ner: bool = False


class ReviewSection(Section):
    enabled: bool = False
    dataset: str | None = None
    api_url: str | None = Field(default=None, description="Argilla URL; the key comes from ARGILLA_API_KEY")
    sample: int = Field(default=200, ge=1)
    stratify: list[str] = Field(default_factory=lambda: ["source"])
    reviewers_per_record: int = Field(default=1, ge=1)
    seed: int | None = None
    reviews: Path | None = Field(default=None, description="a pulled reviews file: apply it instead of push/pull")
    options: dict[str, Any] = Field(default_factory=dict)


class PublishSection(Section):
    repo_id: str = Field(default="local/curate-medical-cot", description="ORG/NAME on the Hub (also the card title)")
    local_dir: Path | None = Field(default=None, description="default: RUNDIR/publish")
    push: bool = Field(default=False, description="also upload local_dir to the Hub (token from HF_TOKEN)")
    private: bool = False
    force: bool = Field(default=False, description="publish even when decontamination or scrubbing was skipped")
    split_by: str | None = Field(default=None, description="a column whose values become splits; default one train split")


class Price(Section):
    cost_per_1k_input: float = Field(ge=0)
    cost_per_1k_output: float = Field(ge=0)


class PipelineConfig(Section):
    run: RunSection = Field(default_factory=RunSection)
    sources: list[SourceSection] = Field(min_length=1)
    generate: GenerateSection
    filter: FilterSection = Field(default_factory=FilterSection)
    dedupe: DedupeSection = Field(default_factory=DedupeSection)
    decontaminate: DecontaminateSection = Field(default_factory=DecontaminateSection)
    scrub: ScrubSection = Field(default_factory=ScrubSection)
    review: ReviewSection = Field(default_factory=ReviewSection)
    publish: PublishSection = Field(default_factory=PublishSection)
    prices: dict[str, Price] = Field(default_factory=dict, description="{teacher: price}, for the report's cost table")

    @field_validator("sources")
    @classmethod
    def _unique_sources(cls, sources: list[SourceSection]) -> list[SourceSection]:
        seen = set()
        for s in sources:
            key = (s.name, s.path, s.split, s.config)
            if key in seen:
                raise ValueError(f"source {s.name!r} (path {s.path}, split {s.split}) is listed twice")
            seen.add(key)
        return sources

    def section(self, name: str) -> Any:
        return self.sources if name == "sources" else getattr(self, name)

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any) -> Any:
    """`${VAR}` / `${VAR:-default}` in every string of a parsed TOML document."""
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(f"environment variable {name} is not set (write ${{{name}:-default}} for a default)")
        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    return value


def _describe(error: dict[str, Any]) -> str:
    loc = [str(p) for p in error["loc"]]
    where = ""
    if loc:
        if loc[0] == "sources" and len(loc) > 1:
            where = f"[[sources]] #{int(loc[1]) + 1}" + (f" key {'.'.join(loc[2:])!r}" if len(loc) > 2 else "")
        else:
            where = f"[{loc[0]}]" + (f" key {'.'.join(loc[1:])!r}" if len(loc) > 1 else "")
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key" if len(loc) > 1 else f"unknown section [{loc[0]}]"
    if error["type"] == "missing":
        return f"{where}: required but missing"
    return f"{where}: {error['msg']}" + (f" (got {error['input']!r})"[:160] if "input" in error and
                                          error["type"] != "value_error" and not isinstance(error["input"], dict) else "")


def parse_config(data: dict[str, Any], origin: str = "<config>") -> PipelineConfig:
    try:
        return PipelineConfig.model_validate(expand_env(data))
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"{origin}: {problems}") from None
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None


def load_config(path: str | os.PathLike[str]) -> PipelineConfig:
    """Read and validate a run config; a clear `ConfigError` names the file, section and key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    config = parse_config(data, str(path))
    if config.run.dir is None:
        config.run.dir = Path("runs") / path.stem
    return config
