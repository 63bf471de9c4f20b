"""A randomly initialised Qwen2 model and a tokenizer trained on the spot: the one tiny-model builder, for the
recipe end to end, every backend test (transformers, vLLM, transformers serve) and the benchmarks, with no download.

Used by the tests (a tiny shape, seconds on CPU) and by `bench/train.py` (Qwen2.5-0.5B's real shape). The tokenizer
is a byte-level BPE trained on a few hundred synthetic strings that include the tags of the training format, and
carries a Qwen-style chat template, so prompts and completions go through the same code paths as a real model.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

#: Qwen2.5-0.5B's architecture (config.json of Qwen/Qwen2.5-0.5B-Instruct), written out so nothing is downloaded.
QWEN25_05B_SHAPE: dict[str, Any] = dict(
    hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
    vocab_size=151936, max_position_embeddings=32768, rope_theta=1_000_000.0, tie_word_embeddings=True,
)
#: Small enough that a training step takes milliseconds on one CPU core.
TINY_SHAPE: dict[str, Any] = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
    max_position_embeddings=2048, rope_theta=10000.0, tie_word_embeddings=True,
    # Wide enough embeddings that LoRA on the linear layers alone can make confident predictions: with the usual
    # 0.02 the tied output layer caps logits near zero and a 32-wide model cannot learn the format at all.
    initializer_range=0.5,
)
#: What vLLM's CPU build can serve: its attention kernels need a head size of at least 64 (hidden / heads).
VLLM_SHAPE: dict[str, Any] = {**TINY_SHAPE, "hidden_size": 128, "intermediate_size": 256, "num_attention_heads": 2}

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
#: The training-format tags are ordinary (non-special) tokens, as in real Qwen tokenizers: decoding with
#: skip_special_tokens=True (what TRL does) must keep them.
TAG_TOKENS = ["<think>", "</think>", "<answer>", "</answer>"]

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_WORDS = ("patient presents with fever cough chest pain dyspnea history of diabetes hypertension which is the most "
          "likely diagnosis next best step in management treatment drug mechanism of action answer option because "
          "therefore the findings suggest acute chronic infection renal cardiac hepatic pulmonary yes no maybe").split()


def synthetic_corpus(n: int = 400, seed: int = 0) -> list[str]:
    """Strings that look like prompts and canonical completions, to train the tokenizer on. The question templates
    are in it too, so the student prompt tokenizes compactly, as it would with a real tokenizer. Only those: the
    tokenizer (and so the seeded tiny model) must not change when a template for another job is added (a judge
    prompt did that once, and the seeded training runs of the tests drifted)."""
    from prompts import MULTIPLE_CHOICE, MULTIPLE_CHOICE_CONTEXT, RATIONALIZE, TEMPLATE_DIR

    rng = random.Random(seed)
    names = sorted((MULTIPLE_CHOICE, MULTIPLE_CHOICE_CONTEXT, RATIONALIZE))
    texts = [(TEMPLATE_DIR / f"{name}.txt").read_text(encoding="utf-8") for name in names] * 20
    for _ in range(n):
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 16)))
        letter = rng.choice("ABCDE")
        texts.append(f"<think>\n{words}\n</think>\n<answer>{letter}</answer>")
        texts.append(f"Question: {words}?\nA. {rng.choice(_WORDS)}\nB. {rng.choice(_WORDS)}\nAnswer with a letter.")
    return texts


def train_tokenizer(out_dir: str | Path, *, vocab_size: int = 600, seed: int = 0):
    """Train a byte-level BPE tokenizer, wrap it as a transformers fast tokenizer with a chat template, save it."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(synthetic_corpus(seed=seed), trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAG_TOKENS])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token=None, unk_token=None)
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"
    fast.save_pretrained(str(out_dir))
    return fast


def build_random_model(out_dir: str | Path, *, shape: dict[str, Any] | None = None, seed: int = 0,
                       vocab_size: int | None = None, save: bool = True):
    """A random-init Qwen2ForCausalLM of `shape` (default: tiny) with a freshly trained tokenizer, saved to `out_dir`.

    The model's vocabulary is at least the tokenizer's (Qwen2.5's real 151,936 when `shape` says so)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(out_dir, seed=seed)
    dims = dict(TINY_SHAPE if shape is None else shape)
    dims["vocab_size"] = max(vocab_size or dims.get("vocab_size", 0), len(tokenizer))
    config = Qwen2Config(**dims, bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, torch_dtype="float32")
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    if save:
        model.save_pretrained(str(out_dir))
    return model, tokenizer
