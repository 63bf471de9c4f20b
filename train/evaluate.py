"""Evaluation: accuracy, format compliance and answer leakage on held-out questions, stability from training logs,
and the comparison table (markdown + JSON) with PNG plots of reward and format rate over GRPO steps.

Outputs are scored with the same strict parser the rewards use (`train.rewards.parse_completion`): an output that
breaks the format has no answer and counts as wrong. Generation is greedy. Backends: transformers (any device), or
vLLM when installed and a GPU is present, or when asked for (`--backend vllm`; its CPU build works too): one adapter
per request, so the run's `cat`-combined adapter is served.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path
from typing import Any

from curate.io import write_json, write_rows
from curate.records import Question
from train.config import EvalSpec
from train.data import Render, default_render
from train.modeling import read_log
from train.rewards import answer_leaked, collapsed, parse_completion

# ------------------------------------------------------------------ scoring


def score(outputs: list[str], questions: list[Question]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Per-question rows and the aggregate metrics (shares over all questions)."""
    items = []
    for text, question in zip(outputs, questions):
        parsed = parse_completion(text)
        items.append({"question_id": question.id, "gold": question.answer, "output": text,
                      "format_ok": parsed.format_ok, "predicted": parsed.answer,
                      "correct": parsed.format_ok and parsed.answer == question.answer,
                      "answer_leaked": answer_leaked(parsed), "collapsed": collapsed(text)})
    n = len(items)

    def share(key: str) -> float | None:
        return round(sum(1 for i in items if i[key]) / n, 4) if n else None

    metrics = {"n": n, "accuracy": share("correct"), "format_compliance": share("format_ok"),
               "answer_leakage": share("answer_leaked"), "collapsed_outputs": share("collapsed")}
    return metrics, items


# ------------------------------------------------------------------ stability from the logs


def stability(log_rows: list[dict[str, Any]], spike_factor: float = 5.0) -> dict[str, Any]:
    """Reward mean/std and format rate per GRPO step, grad-norm spikes (a step's norm above `spike_factor` x the
    median of the stage's earlier steps), and the share of collapsed generations during GRPO."""
    grpo = [r for r in log_rows if r.get("stage") == "grpo" and "reward" in r]
    out: dict[str, Any] = {
        "steps": [r["step"] for r in grpo],
        "reward_mean": [r.get("reward") for r in grpo],
        "reward_std": [r.get("reward_std") for r in grpo],
        "format_rate": [r.get("rewards/format_reward/mean") for r in grpo],
        "collapsed_share": [r.get("completions/collapsed_share") for r in grpo],
    }
    spikes, max_norm = 0, 0.0
    for stage in sorted({r.get("stage") for r in log_rows}):
        norms = [r["grad_norm"] for r in log_rows if r.get("stage") == stage and isinstance(r.get("grad_norm"), (int, float))]
        for i, norm in enumerate(norms):
            if not math.isfinite(norm):
                spikes += 1
                continue
            max_norm = max(max_norm, norm)
            earlier = [x for x in norms[:i] if math.isfinite(x)]
            if len(earlier) >= 3 and norm > spike_factor * max(statistics.median(earlier), 1e-12):
                spikes += 1
    collapsed_values = [v for v in out["collapsed_share"] if v is not None]
    rewards = [v for v in out["reward_mean"] if v is not None]
    out["summary"] = {
        "grpo_steps": len(grpo),
        "reward_first": rewards[0] if rewards else None,
        "reward_last": rewards[-1] if rewards else None,
        "reward_std_mean": _mean([v for v in out["reward_std"] if v is not None]),
        "grad_norm_spikes": spikes,
        "grad_norm_max": round(max_norm, 6),
        "collapsed_share": _mean(collapsed_values),
        "final_sft_loss": next((r["loss"] for r in reversed(log_rows) if r.get("stage") == "sft" and "loss" in r), None),
    }
    return out


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


# ------------------------------------------------------------------ generation


def generate(model, tokenizer, prompts: list[list[dict[str, str]]], spec: EvalSpec) -> list[str]:
    """Greedy completions with transformers, batched with left padding."""
    import torch

    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    model.eval()
    from rich.progress import track

    outputs: list[str] = []
    starts = range(0, len(prompts), spec.batch_size)
    for start in track(starts, description="generating", transient=True, console=_console()):
        batch = prompts[start:start + spec.batch_size]
        texts = [tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in batch]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=spec.max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        new = out[:, enc["input_ids"].shape[1]:]
        outputs.extend(tokenizer.batch_decode(new, skip_special_tokens=True))
    return outputs


def _console():
    from rich.console import Console

    return Console(stderr=True)


def generate_vllm(base_model: str, adapter_dir: str | None, prompts: list[list[dict[str, str]]],
                  spec: EvalSpec, dtype: str = "auto") -> list[str]:
    """Greedy completions with vLLM, serving one LoRA adapter (the combined one) when given, in the precision the
    transformers backend would use (vLLM's own `auto` downcasts float32 to bfloat16 on CPU)."""
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    rank = None
    if adapter_dir:
        rank = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())["r"]
    llm = LLM(model=base_model, enable_lora=adapter_dir is not None, max_lora_rank=max(rank or 16, 16), dtype=dtype)
    request = LoRARequest("adapter", 1, str(adapter_dir)) if adapter_dir else None
    results = llm.chat(prompts, SamplingParams(temperature=0.0, max_tokens=spec.max_new_tokens), lora_request=request)
    return [r.outputs[0].text for r in results]


def _vllm_usable(spec: EvalSpec) -> bool:
    if spec.backend == "transformers":
        return False
    try:
        import torch
        import vllm  # noqa: F401
    except ImportError:
        if spec.backend == "vllm":
            raise RuntimeError("backend 'vllm' asked for but vllm is not installed: pip install 'curate[vllm]'") from None
        return False
    return torch.cuda.is_available() or spec.backend == "vllm"


# ------------------------------------------------------------------ one model, one run


def resolve_model(model: str | os.PathLike[str], adapters: list[str] | None = None) -> dict[str, Any]:
    """`model` is a run folder (its run.json names the base and the active adapters) or a base model id/folder;
    `adapters` (folders) are loaded on top and all made active."""
    run_file = Path(model) / "run.json"
    if run_file.exists() and not adapters:
        run = json.loads(run_file.read_text())
        root = Path(model)
        return {"name": run["mode"], "base_model": run["base_model"], "run_dir": str(root),
                "adapters": {n: str(root / run["adapters"][n]) for n in run["active"]},
                "combined": str(root / run["adapters"]["combined"]) if "combined" in run["adapters"] else None}
    named = {Path(a).name: str(a) for a in adapters or []}
    for folder in named.values():
        if not (Path(folder) / "adapter_config.json").exists():
            raise FileNotFoundError(f"{folder}: not a LoRA adapter folder (no adapter_config.json)")
    return {"name": Path(str(model)).name or str(model), "base_model": str(model), "run_dir": None,
            "adapters": named, "combined": next(iter(named.values())) if len(named) == 1 else None}


def evaluate_model(target: dict[str, Any], questions: list[Question], spec: EvalSpec, *,
                   render: Render = default_render, dtype: str = "auto") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Generate for every question with the target (base + active adapters) and score the outputs."""
    from train.config import TrainConfig

    questions = questions[: spec.limit] if spec.limit else questions
    prompts = [render(q) for q in questions]
    if _vllm_usable(spec) and (not target["adapters"] or target["combined"]):
        from train.modeling import device_and_dtype

        precision = str(device_and_dtype(TrainConfig(dtype=dtype))[1]).removeprefix("torch.")
        outputs = generate_vllm(target["base_model"], target["combined"], prompts, spec, dtype=precision)
        backend = "vllm"
    else:
        from train.compose import load_adapters
        from train.modeling import load_base

        model, tokenizer = load_base(target["base_model"], TrainConfig(dtype=dtype))
        if target["adapters"]:
            model = load_adapters(model, target["adapters"])
        outputs = generate(model, tokenizer, prompts, spec)
        backend = "transformers"
    metrics, items = score(outputs, questions)
    metrics["backend"] = backend
    return metrics, items


def evaluate_target(target: dict[str, Any], questions: list[Question], spec: EvalSpec, out_dir: Path, *,
                    render: Render = default_render) -> dict[str, Any]:
    """Evaluate one model and write out_dir/<name>/{items.jsonl, metrics.json}; returns its comparison row."""
    metrics, items = evaluate_model(target, questions, spec, render=render)
    logs = read_log(Path(target["run_dir"]) / "logs" / "train.jsonl") if target["run_dir"] else []
    stab = stability(logs, spec.grad_spike_factor)
    row = {"run": target["name"], **metrics, **stab["summary"], "series": {k: v for k, v in stab.items() if k != "summary"}}
    folder = out_dir / target["name"]
    write_rows(items, folder / "items.jsonl")
    write_json(row, folder / "metrics.json")
    return row


# ------------------------------------------------------------------ comparison table and plots

TABLE_COLUMNS = [("run", "run"), ("n", "n"), ("accuracy", "accuracy"), ("format_compliance", "format"),
                 ("answer_leakage", "leakage"), ("collapsed_outputs", "collapsed (eval)"),
                 ("reward_first", "reward first"), ("reward_last", "reward last"),
                 ("reward_std_mean", "reward std (mean)"), ("grad_norm_spikes", "grad spikes"),
                 ("collapsed_share", "collapsed (GRPO)"), ("final_sft_loss", "final SFT loss")]


def comparison_markdown(rows: list[dict[str, Any]]) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return "-"
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(title for _, title in TABLE_COLUMNS) + " |",
             "|" + "---|" * len(TABLE_COLUMNS)]
    lines += ["| " + " | ".join(cell(row.get(key)) for key, _ in TABLE_COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def plot_series(rows: list[dict[str, Any]], key: str, ylabel: str, path: Path) -> Path:
    """One line per run that has GRPO logs (reward: mean with a +-std band)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    plotted = 0
    for row in rows:
        series = row.get("series") or {}
        steps, values = series.get("steps") or [], series.get(key) or []
        pairs = [(s, v) for s, v in zip(steps, values) if v is not None]
        if not pairs:
            continue
        xs, ys = zip(*pairs)
        ax.plot(xs, ys, marker="o", markersize=3, label=row["run"])
        if key == "reward_mean":
            stds = [sd or 0.0 for s, v, sd in zip(steps, values, series.get("reward_std") or []) if v is not None]
            if len(stds) == len(ys):
                ax.fill_between(xs, [y - d for y, d in zip(ys, stds)], [y + d for y, d in zip(ys, stds)], alpha=0.15)
        plotted += 1
    if plotted:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no GRPO steps logged", ha="center", va="center", transform=ax.transAxes)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("GRPO step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def write_comparison(rows: list[dict[str, Any]], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """comparison.md, comparison.json (without the per-step series: those are in each run's metrics.json),
    plots/reward.png and plots/format_rate.png."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "comparison.md"
    from curate.io import atomic_path

    with atomic_path(md) as tmp:
        tmp.write_text(comparison_markdown(rows), encoding="utf-8")
    write_json([{k: v for k, v in row.items() if k != "series"} for row in rows], out_dir / "comparison.json")
    return {"markdown": md, "json": out_dir / "comparison.json",
            "reward_plot": plot_series(rows, "reward_mean", "reward (mean, ±std)", out_dir / "plots" / "reward.png"),
            "format_plot": plot_series(rows, "format_rate", "format rate", out_dir / "plots" / "format_rate.png")}
