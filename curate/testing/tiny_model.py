"""A tiny random Qwen2 causal LM and a tokenizer trained on the spot, saved to a folder (test support, CPU, ~1 s).

Nothing is downloaded: the tokenizer is a byte-level BPE trained on a few sentences, with a chat template, and the
model is Qwen2 with random weights. It writes gibberish, which is all a backend test needs: real tokenization, real
`generate`, real chat templating, on the same code path as a real model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
#: The default: fast on CPU for transformers (head size 8).
TINY_SHAPE: dict[str, Any] = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                  num_key_value_heads=2)
#: What vLLM's CPU build can serve: its attention kernels need a head size of at least 64 (hidden / heads).
VLLM_SHAPE: dict[str, Any] = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
                                  num_key_value_heads=2)
CORPUS = [
    "A 45-year-old man presents with chest pain radiating to the left arm. Which of the following is the next step?",
    "Answer the following multiple-choice question. Options: A. aspirin B. heparin C. observation D. surgery",
    "<think> The patient has signs of infection, so the best answer is antibiotics. </think> <answer>B</answer>",
    "Read the abstract and answer the research question: yes, no or maybe.",
]


def make_tiny_model(directory: str | os.PathLike[str], *, seed: int = 0, shape: dict[str, Any] | None = None,
                    max_position_embeddings: int = 2048) -> Path:
    """Save a tiny random Qwen2 model (`shape`: TINY_SHAPE by default, VLLM_SHAPE for vLLM) and its tokenizer to
    `directory`; returns the path."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS * 20, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        bos_token=None, unk_token=None)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(directory)
    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=len(tokenizer), **(shape or TINY_SHAPE),
                         max_position_embeddings=max_position_embeddings, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=None, tie_word_embeddings=True)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(directory)
    return directory
