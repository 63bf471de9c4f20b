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
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

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
    seed: int = Field(default=0, description="the seed of every stage that has one and sets none itself")


def optional_stage(config: type[BaseModel], enabled: bool, name: str, **fields: Any) -> type[BaseModel]:
    """A stage's TOML section: exactly its config's keys, plus `enabled` (and any run-only `fields`)."""
    return create_model(name, __base__=config, __doc__=config.__doc__,
                        enabled=(bool, Field(default=enabled, description="run this stage")), **fields)


def _sections() -> dict[str, Any]:
    """The stage config classes, imported when a config is parsed (not when `curate --help` starts)."""
    from curate.decontaminate import DecontaminateConfig
    from curate.dedupe import DedupeConfig
    from curate.filter import FilterConfig
    from curate.generate.config import GenerateConfig
    from curate.publish import PublishConfig
    from curate.scrub.runner import ScrubConfig
    from curate.verify.config import VerifyConfig
    from review.apply import ReviewApplyConfig
    from review.push import PushConfig
    from sources.stage import SourceSpec

    review = create_model(
        "ReviewSection", __base__=(ReviewApplyConfig, PushConfig),
        __doc__="Clinician spot-check: push a stratified sample to Argilla, pull verdicts, apply them.",
        enabled=(bool, Field(default=False, description="run this stage")),
        dataset=(str | None, Field(default=None, description="the Argilla dataset the sample is pushed to")),
        seed=(int | None, Field(default=None, description="sampling seed; default: [run] seed")),
        reviews=(Path | None, Field(default=None, description="a pulled reviews file: apply it instead of push/pull")))
    publish = create_model(
        "PublishSection", __base__=PublishConfig,
        local_dir=(Path | None, Field(default=None, description="default: RUNDIR/publish")))
    return {"sources": SourceSpec, "generate": GenerateConfig, "filter": FilterConfig,
            "verify": optional_stage(VerifyConfig, True, "VerifySection"),
            "dedupe": optional_stage(DedupeConfig, True, "DedupeSection"),
            "decontaminate": optional_stage(DecontaminateConfig, True, "DecontaminateSection"),
            "scrub": optional_stage(ScrubConfig, True, "ScrubSection"), "review": review, "publish": publish}


class Price(Section):
    cost_per_1k_input: float = Field(ge=0)
    cost_per_1k_output: float = Field(ge=0)


_MODEL: type[BaseModel] | None = None


def pipeline_model() -> type[BaseModel]:
    """The whole run config: one section per stage, each the stage's own config class (built once)."""
    global _MODEL
    if _MODEL is None:
        sections = _sections()
        spec = sections["sources"]
        _MODEL = create_model(
            "PipelineConfig", __base__=PipelineConfigBase,
            sources=(list[spec], Field(min_length=1, description="the sources, in order")),
            generate=(sections["generate"], ...),
            filter=(sections["filter"], Field(default_factory=sections["filter"])),
            verify=(sections["verify"] | None, Field(default=None, description="no [verify]: no judge checks the "
                                                                                "reasoning")),
            dedupe=(sections["dedupe"], Field(default_factory=sections["dedupe"])),
            decontaminate=(sections["decontaminate"], Field(default_factory=sections["decontaminate"])),
            scrub=(sections["scrub"], Field(default_factory=sections["scrub"])),
            review=(sections["review"], Field(default_factory=sections["review"])),
            publish=(sections["publish"] | None, Field(default=None, description="no [publish]: the run ends before "
                                                                                  "publishing")),
        )
    return _MODEL


class PipelineConfigBase(Section):
    run: RunSection = Field(default_factory=RunSection)
    prices: dict[str, Price] = Field(default_factory=dict, description="{teacher: price}, for the report's cost table")

    @field_validator("sources", check_fields=False)
    @classmethod
    def _unique_sources(cls, sources: list[Any]) -> list[Any]:
        from sources.stage import unique_sources

        return unique_sources(sources)  # the same check `curate sources` runs

    def section(self, name: str) -> Any:
        return getattr(self, name)

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


#: The run config's type (for annotations): every instance comes from `pipeline_model()`.
PipelineConfig = PipelineConfigBase


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}")


def expand_env(value: Any, unset: list[str] | None = None) -> Any:
    """`${VAR}`, `${VAR:-default}` (default when unset or empty) and `${VAR-default}` (default only when unset), as
    the shell reads them, in every string of a parsed TOML document. A `${VAR}` without a default that is not set is
    an error, unless `unset` is a list: then its name is added there and the text `${VAR}` is kept (a dry run shows
    what it can without a teacher)."""
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name, form, default = match.group(1), match.group(2), match.group(3)
            current = os.environ.get(name)
            if current is not None and (current or form != ":-"):
                return current
            if form is not None:
                return default
            if unset is not None:
                unset.append(name)
                return match.group(0)
            raise ConfigError(f"environment variable {name} is not set (write ${{{name}:-default}} for a default)")
        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_env(v, unset) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, unset) for v in value]
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


def parse_config(data: dict[str, Any], origin: str = "<config>", unset: list[str] | None = None) -> PipelineConfig:
    try:
        return pipeline_model().model_validate(expand_env(data, unset))
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"{origin}: {problems}") from None
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None


def load_config(path: str | os.PathLike[str], unset: list[str] | None = None) -> PipelineConfig:
    """Read and validate a run config; a clear `ConfigError` names the file, section and key. With `unset` (a list),
    variables that are not set are collected there instead of refused (see `expand_env`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 (byte {exc.start}): {exc.reason}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    config = parse_config(data, str(path), unset)
    if config.run.dir is None:
        config.run.dir = Path("runs") / path.stem
    return config
