"""Student-calibrated difficulty: after SFT, the GRPO set is the questions the student itself sometimes gets right.

What gives GRPO a gradient is unequal rewards within a group, and a student who answers a question correctly with
probability p gives them with probability 1 - p^k - (1-p)^k: none when p is 0 or 1, whatever the teacher's pass
rate was. So the student (the policy GRPO will start from) answers each candidate question `student_samples`
times, and only questions whose pass rate lies strictly inside `pass_rate_band` are kept. In a multi-process run
each process samples its share of the questions and all of them keep the same set.
"""

from __future__ import annotations

from typing import Any

from curate.records import stable_hash
from train.config import GRPOSpec
from train.distributed import all_gather, is_main, shard
from train.rewards import correctness_reward
from train.sampling import sample_completions


def candidates(prompts: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """All prompts, or a stable subset of `limit` of them (smallest content hashes of their question ids)."""
    if limit is None or limit >= len(prompts):
        return list(prompts)
    chosen = set(sorted((p["question_id"] for p in prompts), key=lambda q: stable_hash("candidate", q))[:limit])
    return [p for p in prompts if p["question_id"] in chosen]


def student_pass_rates(model, tokenizer, prompts: list[dict[str, Any]], spec: GRPOSpec, *,
                       seed: int) -> dict[str, float]:
    """question id -> share of `spec.student_samples` sampled completions that the correctness reward scores 1."""
    from rich.console import Console
    from rich.progress import track

    model.eval()
    mine = shard(prompts)
    rates: dict[str, float] = {}
    for p in track(mine, description="student pass rates", transient=True, disable=not is_main(),
                   console=Console(stderr=True)):
        texts = sample_completions(model, tokenizer, p["prompt"], n=spec.student_samples,
                                   max_new_tokens=spec.max_completion_length, temperature=spec.temperature,
                                   seed=seed + int(stable_hash("student", p["question_id"], length=8), 16))
        rates[p["question_id"]] = sum(correctness_reward(texts, [p["answer"]] * len(texts))) / len(texts)
    merged: dict[str, float] = {}
    for part in all_gather(rates):
        merged.update(part)
    return {p["question_id"]: merged[p["question_id"]] for p in prompts}


def select_by_student(model, tokenizer, prompts: list[dict[str, Any]], spec: GRPOSpec, *,
                      seed: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The GRPO prompts whose student pass rate is strictly inside the band, and what run.json records of it."""
    pool = candidates(prompts, spec.student_candidates)
    rates = student_pass_rates(model, tokenizer, pool, spec, seed=seed)
    low, high = spec.pass_rate_band
    kept = [{**p, "pass_rate": rates[p["question_id"]]} for p in pool if low < rates[p["question_id"]] < high]
    record = {"by": "student", "band": [low, high], "samples_per_question": spec.student_samples,
              "candidates": len(pool), "kept": len(kept),
              "mean_pass_rate": round(sum(rates.values()) / len(rates), 4) if rates else None,
              "pass_rates": rates}
    return kept, record
