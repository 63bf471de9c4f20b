"""The training configuration: one pydantic model, loaded from TOML or YAML, checked before any training starts.

Unknown keys and bad values are errors naming the file and the dotted key, so a typo never silently falls back to a
default after an hour of SFT.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from train.distributed import world_size

#: Every linear layer of a Qwen2 block: the usual LoRA target set for the recipe.
QWEN_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class ConfigError(ValueError):
    """A bad config file or value: names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LoraSpec(_Strict):
    r: int = Field(16, ge=1, description="LoRA rank")
    alpha: float = Field(32.0, gt=0, description="lora_alpha (scaling = alpha / r)")
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: list(QWEN_LINEAR), min_length=1)


class SFTSpec(_Strict):
    learning_rate: float = Field(2e-4, gt=0)
    max_steps: int = Field(200, ge=1)
    batch_size: int = Field(8, ge=1, description="per-device examples per step")
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_length: int = Field(2048, ge=8, description="prompt + completion tokens; longer examples are truncated")
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)


class RewardWeights(_Strict):
    correctness: float = Field(1.0, ge=0.0)
    format: float = Field(0.5, ge=0.0)


#: Where GRPO's questions come from. student_band: after SFT, sample the student `student_samples` times per
#: candidate question and keep those whose student pass rate lies strictly inside pass_rate_band (what gives a
#: group unequal rewards is the student's own variance p(1-p)); teacher_band: the same band over the teacher's pass
#: rate from the filter ("band" is its former name, still accepted); all: every question.
Difficulty = Literal["student_band", "teacher_band", "all"]


class GRPOSpec(_Strict):
    learning_rate: float = Field(1e-5, gt=0)
    max_steps: int = Field(200, ge=1)
    batch_size: int = Field(8, ge=1, description="per-device completions per step (num_generations per prompt)")
    gradient_accumulation_steps: int = Field(1, ge=1)
    num_generations: int = Field(8, ge=2, description="completions per prompt; GRPO needs at least 2 to compare")
    max_completion_length: int = Field(1024, ge=1)
    beta: float = Field(0.04, ge=0.0, description="KL coefficient against the reference policy (decoupled: base + "
                                                   "frozen reasoning adapter; monolithic: the adapter after SFT; "
                                                   "GRPO only: the base model); 0 turns the KL term off")
    temperature: float = Field(1.0, gt=0.0)
    reward_weights: RewardWeights = Field(default_factory=RewardWeights)
    difficulty: Difficulty = Field("student_band", description="how GRPO questions are chosen (see Difficulty)")
    pass_rate_band: tuple[float, float] = (0.0, 1.0)
    generation: Literal["auto", "transformers", "vllm"] = Field(
        "auto", description="how GRPO samples completions: vllm (TRL's engine colocated in the trainer's process), "
                            "transformers (generate), auto: vllm where it is installed")
    student_samples: int = Field(8, ge=2, description="student_band: completions sampled per candidate question")
    student_candidates: int | None = Field(None, ge=1, description="student_band: sample at most this many "
                                           "candidate questions (a stable-hash subset); default all")

    @field_validator("difficulty", mode="before")
    @classmethod
    def _former_name(cls, value: Any) -> Any:
        return "teacher_band" if value == "band" else value

    @model_validator(mode="after")
    def _check(self) -> GRPOSpec:
        # TRL groups completions across processes: the global generation batch must hold whole groups.
        generation_batch = self.batch_size * self.gradient_accumulation_steps * world_size()
        if generation_batch % self.num_generations:
            raise ValueError(f"batch_size x gradient_accumulation_steps x processes ({generation_batch}) must be "
                             f"divisible by num_generations ({self.num_generations}): each prompt's completions form "
                             "one group")
        low, high = self.pass_rate_band
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"pass_rate_band must satisfy 0 <= low < high <= 1, got {list(self.pass_rate_band)}")
        return self


#: Run-health monitors over GRPO's logged metrics: name -> (logged key, which side of the threshold is bad).
MONITORS: dict[str, tuple[str, str]] = {
    "frac_reward_zero_std": ("frac_reward_zero_std", "above"),
    "reward_std": ("reward_std", "below"),
    "kl": ("kl", "above"),
    "entropy": ("entropy", "below"),
    "clipped_ratio": ("completions/clipped_ratio", "above"),
    "no_answer": ("completions/no_answer_share", "above"),
}
Monitor = Literal["frac_reward_zero_std", "reward_std", "kl", "entropy", "clipped_ratio", "no_answer"]


class HealthSpec(_Strict):
    """Thresholds of the run-health monitors (None switches one off). A monitor fires when its metric is on the
    bad side of the threshold for `patience` logged GRPO steps in a row: the run gets a warning, and a monitor
    named in `stop_on` (or `--stop-on`) ends training there with status `stopped`."""

    frac_reward_zero_std: float | None = Field(0.9, ge=0.0, le=1.0, description="share of groups whose rewards are "
                                               "all equal (they give no gradient): at most")
    reward_std: float | None = Field(0.01, ge=0.0, description="mean within-group reward std: at least")
    kl: float | None = Field(0.5, gt=0.0, description="KL to the reference policy per token: at most")
    entropy: float | None = Field(0.05, ge=0.0, description="mean token entropy of completions (nats): at least")
    clipped_ratio: float | None = Field(0.5, ge=0.0, le=1.0, description="share of completions cut at "
                                        "max_completion_length: at most")
    no_answer: float | None = Field(0.5, ge=0.0, le=1.0, description="format collapse: share of completions with "
                                    "no parsable <answer>: at most")
    patience: int = Field(3, ge=1, description="consecutive logged steps over a threshold before a monitor fires")
    stop_on: list[Monitor] = Field(default_factory=list, description="monitors that end the run when they fire")

    @model_validator(mode="after")
    def _check(self) -> HealthSpec:
        off = [name for name in self.stop_on if getattr(self, name) is None]
        if off:
            raise ValueError(f"stop_on names monitors without a threshold: {off}")
        return self


class EvalSpec(_Strict):
    max_new_tokens: int = Field(1024, ge=1)
    batch_size: int = Field(16, ge=1)
    backend: Literal["auto", "transformers", "vllm"] = "auto"
    limit: int | None = Field(None, ge=1, description="evaluate only the first N questions")
    grad_spike_factor: float = Field(5.0, gt=1.0, description="a step whose grad norm exceeds this x the running "
                                                                "median of earlier steps counts as a spike")
    holdout_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="experiment: share of questions held out for "
                                                                         "evaluation when no eval questions are given")


class ExportSpec(_Strict):
    combined: bool = Field(True, description="write one cat-combined adapter (exact) next to the two adapters")
    merged: bool = Field(False, description="also write a full model with both adapters merged into the weights")


class TrainConfig(_Strict):
    seed: int = 0
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: bfloat16 on a GPU that supports it, else float32")
    reasoning: LoraSpec = Field(default_factory=LoraSpec)
    reward: LoraSpec = Field(default_factory=lambda: LoraSpec(r=8, alpha=16.0))
    sft: SFTSpec = Field(default_factory=SFTSpec)
    grpo: GRPOSpec = Field(default_factory=GRPOSpec)
    health: HealthSpec = Field(default_factory=HealthSpec)
    eval: EvalSpec = Field(default_factory=EvalSpec)
    export: ExportSpec = Field(default_factory=ExportSpec)


def _read_mapping(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 (byte {exc.start}): {exc.reason}") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"{path}: unknown config format {suffix!r}: expected .toml, .yaml or .yml")
    except ConfigError:
        raise
    except Exception as exc:  # tomllib.TOMLDecodeError, yaml.YAMLError: both carry a line in their message
        raise ConfigError(f"{path}: not valid {suffix.lstrip('.').upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {type(data).__name__}")
    return data


def _describe(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"{source}: {key}: unknown key")
        else:
            got = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else ""
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{source}: {key}: {msg}{got}")
    return "\n".join(lines)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_config(path: str | os.PathLike[str] | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults, then the file (TOML or YAML), then `overrides` (nested dict); raises ConfigError on any problem."""
    data = _read_mapping(Path(path)) if path is not None else {}
    if overrides:
        data = _merge(data, overrides)
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, str(path) if path is not None else "config")) from None


def resolved(config: TrainConfig) -> dict[str, Any]:
    """The full config with every default filled in: what each run writes beside its outputs."""
    return config.model_dump(mode="json")
