"""Sampling the student: the one function the recipe draws completions through (transformers `generate`).

A faster backend (vLLM serving the current adapters as a LoRA request) slots in behind `sample_completions` with
the same arguments and result; nothing else in the recipe calls `generate` for sampling.
"""

from __future__ import annotations

from typing import Any

Messages = list[dict[str, str]]


def encode_chat(tokenizer, batch: list[Messages], device: Any):
    """Chat prompts (with the assistant turn opened) as one left-padded batch of token ids on `device`."""
    tokenizer.padding_side = "left"
    texts = [tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in batch]
    return tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)


def sample_completions(model, tokenizer, prompt: Messages, *, n: int, max_new_tokens: int, temperature: float,
                       seed: int) -> list[str]:
    """`n` completions of one prompt, sampled as GRPO samples them (this temperature, no top-k or top-p cut).
    Seeded per call, so a prompt's samples do not depend on which others are sampled, in what order, or on how
    many processes share the work."""
    import torch

    device = next(model.parameters()).device
    enc = encode_chat(tokenizer, [prompt], device)
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature, top_k=0,
                             top_p=1.0, num_return_sequences=n, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
    return tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
