"""The model card (README.md) every run folder gets: what was trained, on what, how to load it, and its limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curate.io import atomic_path
from train.config import TrainConfig

_MODES = {
    "base": "the base model, untrained (reference point)",
    "sft": "one LoRA adapter (`reasoning`) trained by SFT on verified traces",
    "grpo": "one LoRA adapter (`policy`) trained by GRPO only (answer-correctness and format rewards)",
    "monolithic": "one LoRA adapter (`policy`) trained by SFT, then by GRPO",
    "decoupled": "two LoRA adapters: `reasoning` (SFT on verified traces) and `reward` (GRPO with the reasoning "
                 "adapter active and frozen beneath it); both active at inference, also exported as one exact "
                 "`cat`-combined adapter",
}


def _load_snippet(run: dict[str, Any]) -> str:
    base = run.get("base_model", "BASE")
    adapters = run.get("adapters") or {}
    if not adapters:
        return f'model = AutoModelForCausalLM.from_pretrained("{base}")'
    if "combined" in adapters:
        return (f'base = AutoModelForCausalLM.from_pretrained("{base}")\n'
                f'model = PeftModel.from_pretrained(base, "{adapters["combined"]}")  # = reasoning + reward, exact\n'
                "# or both adapters, explicitly:\n"
                "# from train.compose import load_adapters\n"
                f'# model = load_adapters(base, {{"reasoning": "{adapters.get("reasoning")}", '
                f'"reward": "{adapters.get("reward")}"}})')
    name, folder = next(iter(adapters.items()))
    return (f'base = AutoModelForCausalLM.from_pretrained("{base}")\n'
            f'model = PeftModel.from_pretrained(base, "{folder}", adapter_name="{name}")')


def _difficulty_line(run: dict[str, Any], config: TrainConfig) -> str:
    chosen = run.get("difficulty") or {}
    by = chosen.get("by", config.grpo.difficulty)
    if by == "student":
        return (f"{chosen.get('kept')} of {chosen.get('candidates')} candidates whose student pass rate "
                f"({chosen.get('samples_per_question')} samples each, after SFT; mean {chosen.get('mean_pass_rate')}) "
                f"lies strictly inside {chosen.get('band')}")
    skipped = (run.get("data") or {}).get("grpo_skipped") or {}
    if by == "teacher_band":
        return f"teacher pass rate strictly inside {list(config.grpo.pass_rate_band)} (skipped {skipped})"
    return "all questions"


def _reference_line(run: dict[str, Any]) -> str:
    grpo = next((s for s in run.get("stages", []) if s.get("stage") == "grpo"), None)
    if grpo is None:
        return "no reference (no GRPO stage)"
    reference = grpo.get("kl_reference")
    if reference is None:
        return "no reference (KL term off)"
    return "the base model" if not reference else "the base model with adapter(s) " + ", ".join(reference)


def render_card(run: dict[str, Any], config: TrainConfig, extra: dict[str, Any] | None = None) -> str:
    mode = run["mode"]
    data = run.get("data") or {}
    lines = [
        "---",
        f"base_model: {run.get('base_model')}",
        "library_name: peft" if run.get("adapters") else "library_name: transformers",
        "tags: [curate, medical, reasoning, lora, grpo]",
        "---",
        "",
        f"# curate run: {mode}",
        "",
        f"{_MODES[mode][0].upper()}{_MODES[mode][1:]}.",
        "",
        "Output format: `<think>\\n{reasoning}\\n</think>\\n<answer>{letter}</answer>`.",
        "",
        "## Data",
        "",
        f"- training file: `{data.get('path', 'n/a')}` (sha256 `{data.get('sha256', 'n/a')}`)",
        f"- SFT examples: {data.get('sft_examples')}; GRPO candidate prompts: {data.get('grpo_prompts')}; "
        f"questions: {data.get('questions')}",
        f"- GRPO questions: {_difficulty_line(run, config)}",
        "",
        f"Status: **{run.get('status', 'done')}**" + (f": {run['explanation']}" if run.get("explanation") else ""),
        "",
        "## Training",
        "",
        "| stage | steps | tokens | tokens/s | wall s | peak MiB | mean loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in run.get("stages", []):
        lines.append(f"| {s['stage']} | {s.get('steps')} | {s.get('tokens')} | {s.get('tokens_per_s')} | "
                     f"{s.get('wall_s')} | {s.get('peak_memory_mib')} | {s.get('train_loss')} |")
    if not run.get("stages"):
        lines.append("| (none) | | | | | | |")
    lines += ["", f"KL coefficient {config.grpo.beta} against {_reference_line(run)}.", "",
              f"Checks: `{json.dumps(run.get('checks') or {})}`", ""]
    if run.get("warnings"):
        lines += ["Run-health warnings:", "", "| metric | stage | step | value | threshold |", "|---|---|---|---|---|"]
        lines += [f"| {w['metric']} | {w['stage']} | {w['step']} | {w['value']:.4g} | {w['threshold']} |"
                  for w in run["warnings"]]
        lines.append("")
    lines += ["The resolved configuration is in `config.json`; per-step logs in `logs/train.jsonl`.", "",
              "## Load", "", "```python", "from peft import PeftModel",
              "from transformers import AutoModelForCausalLM", _load_snippet(run), "```", ""]
    if extra:
        lines += ["## Evaluation", "", "```json", json.dumps(extra, indent=2, default=str), "```", ""]
    lines += ["## Limitations", "",
              "Research artefact for studying reasoning models on medical multiple-choice questions. Not a medical "
              "device; not for clinical decisions. Accuracy on exam-style questions says little about safety at "
              "the bedside.", ""]
    return "\n".join(lines)


def write_card(run_dir: Path, run: dict[str, Any], config: TrainConfig, extra: dict[str, Any] | None = None) -> Path:
    path = Path(run_dir) / "README.md"
    with atomic_path(path) as tmp:
        tmp.write_text(render_card(run, config, extra), encoding="utf-8")
    return path
