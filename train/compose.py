"""Stage 3: both adapters at inference, one exact `cat`-combined adapter, and optionally a merged model.

`cat` concatenates the two LoRA factor pairs (rank r1 + r2, each scaled by its own alpha/r), so the combined
adapter computes exactly B1 A1 s1 + B2 A2 s2: the same function as both adapters active, in one adapter that any
single-LoRA server (vLLM, TGI) can load.
"""

from __future__ import annotations

from pathlib import Path

COMBINED = "combined"


def activate(model, names: list[str]) -> None:
    """Make `names` the active adapters, all frozen (PeftModel.set_adapter takes one name; the tuner takes a list)."""
    model.base_model.set_adapter(list(names), inference_mode=True)
    for param in model.parameters():
        param.requires_grad_(False)


def combine(model, names: list[str], name: str = COMBINED) -> str:
    """Add the exact `cat` combination of `names` (weight 1 each) as adapter `name`."""
    if name in model.peft_config:
        model.delete_adapter(name)
    model.add_weighted_adapter(list(names), [1.0] * len(names), name, combination_type="cat")
    return name


def load_adapters(base_model, adapter_dirs: dict[str, str | Path]):
    """A PeftModel over `base_model` with each named adapter loaded from its folder and all of them active."""
    from peft import PeftModel

    items = list(adapter_dirs.items())
    first_name, first_dir = items[0]
    model = PeftModel.from_pretrained(base_model, str(first_dir), adapter_name=first_name, is_trainable=False)
    for name, folder in items[1:]:
        model.load_adapter(str(folder), adapter_name=name, is_trainable=False)
    activate(model, [name for name, _ in items])
    return model


def export(model, tokenizer, names: list[str], adapters_dir: Path, *, merged_dir: Path | None = None) -> dict[str, str]:
    """Write the combined adapter beside the others (adapters_dir/combined) and, if asked, the merged model.

    Without `merged_dir`, `names` are active again afterwards. With it, the combined adapter is merged into the
    base weights in place (no second copy of a 7B model in memory): call it last."""
    combine(model, names)
    model.save_pretrained(str(adapters_dir), selected_adapters=[COMBINED])
    written = {COMBINED: str(adapters_dir / COMBINED)}
    if merged_dir is None:
        activate(model, names)
        return written
    activate(model, [COMBINED])
    merged = model.merge_and_unload(adapter_names=[COMBINED])
    merged.save_pretrained(str(merged_dir))
    tokenizer.save_pretrained(str(merged_dir))
    written["merged"] = str(merged_dir)
    return written
