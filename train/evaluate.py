"""Evaluation: accuracy, format compliance and answer leakage on held-out questions, and stability from the training
logs (the comparison table and the stability figure are in `train.compare`).

Accuracy reads each output's answer with the filter's extractor (`curate.filter.extract`, the one home of answer
extraction); format compliance is the strict parse the rewards use (`train.rewards.parse_completion`), reported beside
it, and strict accuracy needs both, so a model that answers right in another format is not scored as wrong (which
made base and GRPO-only score ~0 by construction). Generation is greedy. Backends: transformers (any device), or
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
    """Per-question rows and the aggregate metrics (shares over all questions). Accuracy reads the answer with the
    filter's extractor (the one home of answer extraction), so a right answer in another format still counts;
    format compliance (the strict `<think>…</think><answer>X</answer>` parse GRPO rewards) is reported beside it,
    and strict_accuracy is both at once. With the strict parse alone a base model scores ~0 by construction."""
    from curate.filter.extract import extract_answer

    items = []
    for text, question in zip(outputs, questions):
        parsed = parse_completion(text)
        extracted = extract_answer(text, question.options)
        items.append({"question_id": question.id, "gold": question.answer, "output": text,
                      "format_ok": parsed.format_ok, "predicted": parsed.answer,
                      "extracted": extracted.letter, "extract_reason": extracted.reason,
                      "correct": extracted.letter == question.answer,
                      "strict_correct": parsed.format_ok and parsed.answer == question.answer,
                      "answer_leaked": answer_leaked(parsed), "collapsed": collapsed(text)})
    n = len(items)

    def share(key: str) -> float | None:
        return round(sum(1 for i in items if i[key]) / n, 4) if n else None

    metrics = {"n": n, "accuracy": share("correct"), "format_compliance": share("format_ok"),
               "strict_accuracy": share("strict_correct"), "answer_leakage": share("answer_leaked"),
               "collapsed_outputs": share("collapsed")}
    return metrics, items


# ------------------------------------------------------------------ stability from the logs


#: Per-step series read from GRPO's log: name -> logged key (the stability figure plots four of them).
SERIES = {"reward_mean": "reward", "reward_std": "reward_std", "kl": "kl", "entropy": "entropy",
          "format_rate": "rewards/format_reward/mean", "no_answer_share": "completions/no_answer_share",
          "clipped_ratio": "completions/clipped_ratio", "frac_reward_zero_std": "frac_reward_zero_std",
          "collapsed_share": "completions/collapsed_share"}


def stability(log_rows: list[dict[str, Any]], spike_factor: float = 5.0) -> dict[str, Any]:
    """Per GRPO step: reward mean/std, KL to the reference, entropy, format rate and the other monitored shares;
    grad-norm spikes (a step's norm above `spike_factor` x the median of the stage's earlier steps), and the share
    of collapsed generations during GRPO."""
    grpo = [r for r in log_rows if r.get("stage") == "grpo" and "reward" in r]
    out: dict[str, Any] = {"steps": [r["step"] for r in grpo],
                           **{name: [r.get(key) for r in grpo] for name, key in SERIES.items()}}
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
    kls = [v for v in out["kl"] if v is not None]
    out["summary"] = {
        "grpo_steps": len(grpo),
        "reward_first": rewards[0] if rewards else None,
        "reward_last": rewards[-1] if rewards else None,
        "kl_first": kls[0] if kls else None,
        "kl_max": max(kls) if kls else None,
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
    from rich.progress import track

    from train.sampling import encode_chat

    device = next(model.parameters()).device
    model.eval()
    outputs: list[str] = []
    starts = range(0, len(prompts), spec.batch_size)
    for start in track(starts, description="generating", transient=True, console=_console()):
        enc = encode_chat(tokenizer, prompts[start:start + spec.batch_size], device)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=spec.max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        new = out[:, enc["input_ids"].shape[1]:]
        outputs.extend(tokenizer.batch_decode(new, skip_special_tokens=True))
    return outputs


def _console():
    from rich.console import Console

    return Console(stderr=True)


# The values vLLM accepts as `max_lora_rank` (vllm/config/lora.py's MaxLoRARanks); any other value is refused at
# engine start, e.g. the rank 24 of the default reasoning r=16 + reward r=8 combined adapter.
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def vllm_lora_rank(rank: int) -> int:
    """The smallest `max_lora_rank` vLLM accepts that serves an adapter of `rank`."""
    for served in VLLM_LORA_RANKS:
        if served >= rank:
            return served
    raise ValueError(f"LoRA rank {rank} is above the largest rank vLLM serves ({VLLM_LORA_RANKS[-1]})")


def generate_vllm(base_model: str, adapter_dir: str | None, prompts: list[list[dict[str, str]]],
                  spec: EvalSpec, dtype: str = "auto") -> list[str]:
    """Greedy completions with vLLM, serving one LoRA adapter (the combined one) when given, in the precision the
    transformers backend would use (vLLM's own `auto` downcasts float32 to bfloat16 on CPU)."""
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    rank = None
    if adapter_dir:
        rank = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())["r"]
    llm = LLM(model=base_model, enable_lora=adapter_dir is not None, max_lora_rank=vllm_lora_rank(rank or 16),
              dtype=dtype)
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


def comparison_engine(targets: list[dict[str, Any]], spec: EvalSpec) -> str:
    """The one engine every model of a comparison is generated with: vLLM only when it is usable and serves every
    target (a base, or one combined adapter), since greedy outputs differ between engines and a row's score would
    otherwise move with the engine, not the training."""
    if spec.backend == "transformers" or any(t["adapters"] and not t["combined"] for t in targets):
        return "transformers"
    return "vllm" if _vllm_usable(spec) else "transformers"


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


def training_overlap(target: dict[str, Any], questions: list[Question]) -> str | None:
    """A warning when evaluation questions were in the run's training data: found the way decontaminate finds
    benchmark items in a training file (`decontaminate --reverse`: the same question by exact text, long n-grams or
    fuzzy match), so a reworded copy counts too. None when none were, or the model is not a run folder."""
    if not target["run_dir"]:
        return None
    run = json.loads((Path(target["run_dir"]) / "run.json").read_text())
    data, questions_path = (run.get("data") or {}).get("path"), run.get("questions")
    if not data:
        return None
    from curate.decontaminate import exposure
    from curate.io import InputError
    from curate.question_rows import load_questions
    from train.data import iter_data_rows

    try:
        rows = [row for _, _, row in iter_data_rows(data)]
        known = load_questions(questions_path) if questions_path else None
        _, exposed = exposure(rows, {"eval": [q.row() for q in questions]}, questions=known, path=data)
    except (InputError, OSError) as exc:
        return (f"cannot check whether the evaluation questions were in {target['run_dir']}'s training data: "
                f"{str(exc).splitlines()[0]}")
    if not exposed:
        return None
    ids = [str(e.row.get("id")) for e in exposed]
    return (f"{len(exposed)} of {len(questions)} evaluation questions were in the training data of "
            f"{target['run_dir']} ({data}): {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}; their scores "
            "measure what the model saw, not what it learned")


def evaluate_model(target: dict[str, Any], questions: list[Question], spec: EvalSpec, *,
                   render: Render = default_render, dtype: str = "auto",
                   engine: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Generate for every question with the target (base + active adapters) and score the outputs; `engine` (from
    comparison_engine) fixes the backend, else it is chosen for this target alone."""
    from train.config import TrainConfig

    questions = questions[: spec.limit] if spec.limit else questions
    prompts = [render(q) for q in questions]
    if (engine or comparison_engine([target], spec)) == "vllm":
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
                    render: Render = default_render, engine: str | None = None) -> dict[str, Any]:
    """Evaluate one model and write out_dir/<name>/{items.jsonl, metrics.json}; returns its comparison row."""
    from train.compare import intervals

    metrics, items = evaluate_model(target, questions, spec, render=render, engine=engine)
    run_dir = Path(target["run_dir"]) if target["run_dir"] else None
    logs = read_log(run_dir / "logs" / "train.jsonl") if run_dir else []
    run = json.loads((run_dir / "run.json").read_text()) if run_dir else {}
    stab = stability(logs, spec.grad_spike_factor)
    row = {"run": target["name"], "status": run.get("status"), **metrics, **intervals(items),
           "warnings": len(run.get("warnings") or []), **stab["summary"],
           "series": {k: v for k, v in stab.items() if k != "summary"}, "items": items}
    folder = out_dir / target["name"]
    write_rows(items, folder / "items.jsonl")
    write_json({k: v for k, v in row.items() if k != "items"}, folder / "metrics.json")
    return row
