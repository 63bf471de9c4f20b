"""Loading the base model, LoRA configs, adapter snapshots, and the JSONL training log every trainer writes."""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from train.config import LoraSpec, TrainConfig


def require_train_extra() -> None:
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
        import trl  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"training needs the 'train' extra ({exc.name} is missing): pip install 'curate[train]'") from None


def device_and_dtype(config: TrainConfig) -> tuple[str, Any]:
    """This process's device (in a multi-GPU launch, the GPU of its local rank) and the config's dtype."""
    import torch

    from train.distributed import local_rank

    device = f"cuda:{local_rank()}" if torch.cuda.is_available() else "cpu"
    if config.dtype != "auto":
        return device, getattr(torch, config.dtype)
    if device != "cpu" and torch.cuda.is_bf16_supported():
        return device, torch.bfloat16
    return device, torch.float32


def load_tokenizer(model_id: str):
    """The base model's tokenizer (a pad token is set when the model has none)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_id)
    except OSError as exc:  # not a folder with a model, not a Hub id, or offline without a cached copy
        raise ValueError(f"{model_id}: cannot load the base model ({str(exc).splitlines()[0]})") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(model_id: str, config: TrainConfig):
    """The base model in the config's dtype, on this process's device."""
    from transformers import AutoModelForCausalLM

    device, dtype = device_and_dtype(config)
    try:
        return AutoModelForCausalLM.from_pretrained(model_id, dtype=dtype).to(device)
    except OSError as exc:
        raise ValueError(f"{model_id}: cannot load the base model ({str(exc).splitlines()[0]})") from None


def load_base(model_id: str, config: TrainConfig):
    """The base model and tokenizer (a Hub id or a local folder), in the config's dtype, on the GPU if there is one."""
    tokenizer = load_tokenizer(model_id)
    return load_model(model_id, config), tokenizer


def lora_config(spec: LoraSpec):
    from peft import LoraConfig

    return LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                      target_modules=list(spec.target_modules), task_type="CAUSAL_LM", bias="none")


def adapter_state(model, name: str) -> dict[str, Any]:
    """A CPU copy of one adapter's tensors (keys without the adapter name), to prove what training touched."""
    return {key.replace(f".{name}.", "."): value.detach().to("cpu").clone()
            for key, value in model.named_parameters() if f".{name}." in key}


@contextmanager
def adapters_active(model, names: list[str]):
    """Run the block with exactly `names` active on `model` (a PeftModel); `[]` is the base model, all adapters off.
    What trains is left as it was: peft's adapter switches (set_adapter, and leaving disable_adapter) flip
    requires_grad, so it is restored after."""
    tuner = model.base_model
    before = list(tuner.active_adapters)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    try:
        if names:
            tuner.set_adapter(list(names), inference_mode=True)
            yield
        else:
            with model.disable_adapter():
                yield
    finally:
        if names:
            tuner.set_adapter(before)
        for param in model.parameters():
            param.requires_grad_(id(param) in trainable)


def trainable_adapters(model) -> set[str]:
    """Names of the adapters that have at least one parameter with requires_grad."""
    names = set(model.peft_config)
    return {n for key, p in model.named_parameters() if p.requires_grad for n in names if f".{n}." in key}


def make_log_callback(path: str | os.PathLike[str], stage: str):
    """A TrainerCallback that appends every log entry (loss, reward, grad_norm...) as one JSON line, with the stage,
    the step and the wall time, and counts how long the stage took."""
    from transformers import TrainerCallback

    class JsonlLog(TrainerCallback):
        def __init__(self) -> None:
            self.path = Path(path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.started = time.perf_counter()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or not state.is_world_process_zero:  # one log per run, written by the first process
                return
            entry = {"stage": stage, "step": state.global_step, "wall_s": round(time.perf_counter() - self.started, 3),
                     **{k: v for k, v in logs.items() if isinstance(v, (int, float, str, bool)) or v is None}}
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")

    return JsonlLog()


def read_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
