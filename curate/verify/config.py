"""The verify stage's options and report. The judge's engine options (backend, servers, concurrency, rate limits,
retries, cache, shard, sampling) are generate's own fields, taken from `GenerateConfig` (their one home), with a
judge's defaults where they differ (temperature 0)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model, field_validator
from pydantic.fields import FieldInfo

from curate.generate.config import GenerateConfig, parse_shard
from curate.stage import StageConfig, StageReport, option
from curate.verify.verdict import RULES, Rules

#: GenerateConfig's fields that are about what to generate, not how the engine asks: verify has its own.
NOT_ENGINE = frozenset({"teacher", "prompt", "samples", "limit", "use_n", "replay"})
#: A judge's defaults where they differ from a teacher's.
JUDGE_DEFAULTS: dict[str, Any] = {"temperature": 0.0}


def _engine_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, info in GenerateConfig.model_fields.items():
        if name in NOT_ENGINE:
            continue
        if name in JUDGE_DEFAULTS:
            info = FieldInfo.merge_field_infos(info, default=JUDGE_DEFAULTS[name])
        fields[name] = (info.annotation, info)
    return fields


class JudgeSpec(BaseModel):
    model: str
    base_urls: list[str] | None = None


def parse_judge(text: str) -> JudgeSpec:
    """`MODEL`, or `MODEL@URL` (a judge on a server of its own; `--base-url` serves the others)."""
    model, sep, url = text.partition("@")
    if not model.strip() or (sep and not url.strip()):
        raise ValueError(f"--judge {text!r}: expected MODEL or MODEL@URL")
    return JudgeSpec(model=model.strip(), base_urls=[url.strip()] if sep else None)


class JudgeOptions(StageConfig):
    """Verify's own options; `VerifyConfig` adds the engine's (shown after these)."""

    judges: list[str] = option(..., "judge model (MODEL, or MODEL@URL for a judge on its own server); repeat for "
                               "several judges", flag="--judge", min_length=1)
    rule: Literal[RULES] = option("majority", "with several judges: any (one passing is enough) | majority (more "  # type: ignore[valid-type]
                                  "than half) | all; a judge without a verdict never passes")
    prompt: str = option("judge_reasoning", "judge prompt template (name in prompts/templates, or a .txt path)")
    structured: bool = option(True, "ask for the verdict's JSON schema (response_format; vLLM, SGLang and OpenAI honour "
                              "it; --no-structured for a server that refuses it): the output is parsed strictly either "
                              "way")
    mode: Literal["drop", "flag"] = option("drop", "drop rejected rows (to --rejected) or keep every row, flagged in "
                                           "its verify column (to measure the judge against clinicians)")
    reject_unsupported: bool = option(True, "reject when the judge finds the reasoning does not support the answer")
    reject_wrong_steps: bool = option(True, "reject when the judge marks any step wrong")
    reject_unsupported_steps: bool = option(False, "reject when the judge marks any step unsupported")
    reject_clinical_errors: bool = option(True, "reject when the judge finds a clinical error")
    reject_unsafe: bool = option(True, "reject when the judge finds unsafe advice")
    quote_similarity: float = option(0.9, "a quoted step must match the reasoning this closely (rapidfuzz partial "
                                     "ratio, 0-1; 0: no check), else the verdict is judge_misquote", ge=0, le=1)

    @field_validator("judges")
    @classmethod
    def _judges(cls, value: list[str]) -> list[str]:
        models = [parse_judge(v).model for v in value]
        if len(set(models)) < len(models):
            raise ValueError("a judge is named twice")
        return value

    @field_validator("shard", check_fields=False)
    @classmethod
    def _shard(cls, value: str | None) -> str | None:
        parse_shard(value)
        return value

    def judge_specs(self) -> list[JudgeSpec]:
        return [parse_judge(j) for j in self.judges]

    def rules(self) -> Rules:
        return Rules(reject_unsupported=self.reject_unsupported, reject_wrong_steps=self.reject_wrong_steps,
                     reject_unsupported_steps=self.reject_unsupported_steps,
                     reject_clinical_errors=self.reject_clinical_errors, reject_unsafe=self.reject_unsafe)

    def engine(self, judge: JudgeSpec, cache_dir: Path) -> GenerateConfig:
        """The generate engine's config for one judge: one sample per row, its own server if it names one."""
        options = {name: getattr(self, name) for name in ENGINE_FIELDS}
        options.update(teacher=judge.model, samples=1, use_n=False, cache_dir=cache_dir)
        if judge.base_urls:
            options["base_urls"] = judge.base_urls
        return GenerateConfig(**options)


ENGINE_FIELDS = _engine_fields()
#: Verify's options, then the engine's options as generate declares them.
VerifyConfig = create_model("VerifyConfig", __base__=JudgeOptions, __doc__="The verify stage's options.",
                            **ENGINE_FIELDS)


class JudgeSummary(BaseModel):
    """One judge over the whole input: what it was, what it cost, what it said."""

    model: str
    backend: str
    prompt_name: str
    prompt_hash: str
    structured: bool = Field(description="whether response_format (the verdict's JSON schema) was sent")
    requests: int = 0
    responses: int = 0
    from_cache: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    passed: int = 0
    outcomes: dict[str, int] = Field(default_factory=dict, description="rows per outcome: passed, or the judge's first "
                                                                      "reason code")
    generation_s: float = 0.0


class JudgeAgreement(BaseModel):
    """Agreement between the judges on one criterion (rows every compared judge gave a label)."""

    items: int
    fleiss_kappa: float | None
    percent_agreement: float | None
    cohen_kappa: list[dict[str, Any]] = Field(default_factory=list, description="per pair of judges")


class VerifyReport(StageReport):
    judges: list[JudgeSummary]
    rule: str
    mode: str
    rules: dict[str, bool]
    quote_similarity: float
    shard: str | None = None
    verified: int = Field(default=0, description="rows the judges passed")
    flagged: int = Field(default=0, description="rows that failed, kept in flag mode")
    verified_per_source: dict[str, int] = Field(default_factory=dict)
    agreement: dict[str, JudgeAgreement] = Field(default_factory=dict, description="between judges, per criterion")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_per_1k_rows: float | None = Field(default=None, description="judge tokens (in + out) per 1000 input rows, "
                                             "cache hits included: what verifying costs")
    cache_dir: str = ""

    def summary(self) -> str:
        line = f"{self.stage}: {self.verified} of {self.rows_in} rows verified by {len(self.judges)} judge(s)"
        if self.mode == "flag":
            line += f" ({self.flagged} flagged, all kept)"
        elif self.rejected:
            top = ", ".join(f"{k} {v}" for k, v in list(self.reasons.items())[:3])
            line += f" ({self.rejected} rejected: {top})"
        if self.incomplete:
            line += f"; {self.incomplete} without an answer from a judge (re-run to retry them)"
        return line + f" in {self.wall_s:.1f}s"

    def details(self) -> list[str]:
        lines = []
        for j in self.judges:
            outcomes = ", ".join(f"{k} {v}" for k, v in j.outcomes.items())
            lines.append(f"judge {j.model} ({j.prompt_name} {j.prompt_hash}): {outcomes}; requests {j.requests}, from "
                         f"cache {j.from_cache}, tokens in {j.prompt_tokens} out {j.completion_tokens}")
        if self.tokens_per_1k_rows is not None:
            lines.append(f"cost: {self.prompt_tokens + self.completion_tokens} judge tokens, "
                         f"{self.tokens_per_1k_rows:.0f} per 1k rows")
        for name, a in self.agreement.items():
            kappa = "-" if a.fleiss_kappa is None else f"{a.fleiss_kappa:.2f}"
            lines.append(f"judges agree on {name}: kappa {kappa} over {a.items} rows")
        return lines
