"""Stage 1: LoRA SFT of the active adapter on prompt/completion pairs (loss on the completion only).

Examples are cut at `max_length` tokens from the start, so an example whose prompt alone fills `max_length` has no
completion token left and TRL drops it. `check_lengths` says so before any model is loaded: all of them dropped is
an error naming the prompts' lengths (TRL would otherwise fail deep in torch with an empty sampler), some of them a
warning with the count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from train.config import SFTSpec
from train.modeling import make_log_callback
from train.stage_stats import measure


def prompt_lengths(tokenizer, examples: list[dict[str, Any]]) -> list[int]:
    """Tokens of each example's prompt as the trainer renders it (chat template, assistant turn opened)."""
    return [len(tokenizer.apply_chat_template(e["prompt"], add_generation_prompt=True, tokenize=True,
                                              return_dict=False)) for e in examples]


def check_lengths(tokenizer, examples: list[dict[str, Any]], max_length: int) -> int:
    """The number of examples whose prompt leaves no completion token within `max_length`; raises when that is all
    of them."""
    import statistics

    lengths = prompt_lengths(tokenizer, examples)
    too_long = sum(1 for n in lengths if n >= max_length)
    if examples and too_long == len(examples):
        raise ValueError(f"every SFT example's prompt fills sft.max_length = {max_length} tokens (prompt tokens: "
                         f"min {min(lengths)}, median {statistics.median(lengths):g}, max {max(lengths)}), so "
                         "truncation leaves no completion token to learn from: raise sft.max_length above the "
                         "prompt length plus the completion's")
    return too_long


def train_sft(model, tokenizer, examples: list[dict[str, Any]], spec: SFTSpec, *, seed: int, work_dir: Path,
              log_path: Path, stage: str = "sft") -> dict[str, Any]:
    """Train whichever adapter is active and trainable on `model` (a PeftModel). Returns the stage's figures."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    cuda = torch.cuda.is_available()
    dataset = Dataset.from_list([{"prompt": e["prompt"], "completion": e["completion"]} for e in examples])
    args = SFTConfig(
        output_dir=str(work_dir), max_steps=spec.max_steps, per_device_train_batch_size=spec.batch_size,
        gradient_accumulation_steps=spec.gradient_accumulation_steps, learning_rate=spec.learning_rate,
        warmup_steps=int(spec.warmup_ratio * spec.max_steps), weight_decay=spec.weight_decay, max_length=spec.max_length,
        completion_only_loss=True, seed=seed, data_seed=seed, logging_steps=1, save_strategy="no", report_to="none",
        bf16=cuda and next(model.parameters()).dtype == torch.bfloat16, use_cpu=not cuda,
        include_num_input_tokens_seen="non_padding", dataloader_num_workers=0, disable_tqdm=False,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         callbacks=[make_log_callback(log_path, stage)])
    stats: dict[str, Any] = {"stage": stage, "steps": spec.max_steps, "examples": len(examples),
                             "examples_used": len(trainer.train_dataset)}
    with measure(stats):
        result = trainer.train()
        stats["tokens"] = int(trainer.state.num_input_tokens_seen)
    stats["train_loss"] = round(float(result.training_loss), 6)
    return stats
