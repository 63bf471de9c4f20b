"""Stage 2: GRPO of the trainable adapter(s) with the answer-correctness and strict-format rewards.

In the decoupled recipe the caller activates both adapters and freezes `reasoning`, so the policy that samples and
is scored is reasoning + reward while only `reward` moves; `assert_only_trainable` checks that before training.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from train.config import GRPOSpec
from train.modeling import make_log_callback, trainable_adapters
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


def train_grpo(model, tokenizer, prompts: list[dict[str, Any]], spec: GRPOSpec, *, seed: int, work_dir: Path,
               log_path: Path, stage: str = "grpo") -> dict[str, Any]:
    """Train the trainable adapter(s) of `model` (a PeftModel) on `prompts` (prompt messages + gold `answer`)."""
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    if not prompts:
        raise ValueError("no GRPO prompts: no question lies in the difficulty band (set grpo.difficulty = 'all' "
                         "or widen grpo.pass_rate_band)")
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
    trainer = GRPOTrainer(model=model, reward_funcs=[correctness_reward, format_reward], args=args,
                          train_dataset=dataset, processing_class=tokenizer,
                          callbacks=[make_log_callback(log_path, stage)])
    stats: dict[str, Any] = {"stage": stage, "steps": spec.max_steps, "prompts": len(prompts),
                             "generation": "vllm" if generation["use_vllm"] else "transformers"}
    with measure(stats):
        result = trainer.train()
        stats["tokens"] = int(trainer.state.num_input_tokens_seen)
    stats["train_loss"] = round(float(result.training_loss), 6)
    return stats
