"""Run-health monitors over GRPO's logged metrics, and the explanation of a run that learned nothing.

A monitor watches one metric TRL logs at every step (the share of groups with equal rewards, the within-group
reward std, the KL to the reference, the completions' entropy, the share cut at max_completion_length, the share
without a parsable answer) and fires when it is on the bad side of its threshold for `patience` steps in a row.
A fired monitor is one warning in run.json (metric, step, value, threshold); one named in `stop_on` also ends the
run there. The logic is plain (`HealthMonitor.observe`); `callback` wraps it for the trainer.
"""

from __future__ import annotations

import math
from typing import Any

from train.config import MONITORS, HealthSpec

_WHAT = {
    "frac_reward_zero_std": "share of groups whose completions all got the same reward",
    "reward_std": "mean within-group reward std",
    "kl": "KL to the reference policy",
    "entropy": "mean token entropy of completions",
    "clipped_ratio": "share of completions cut at max_completion_length",
    "no_answer": "share of completions with no parsable <answer> (format collapse)",
}


def warning(metric: str, step: int, value: float, *, stage: str, threshold: float | None = None,
            message: str | None = None) -> dict[str, Any]:
    """One entry of run.json's `warnings`: what crossed, where, by how much."""
    return {"metric": metric, "stage": stage, "step": step, "value": value, "threshold": threshold,
            "message": message or _WHAT.get(metric, metric)}


class HealthMonitor:
    """Feed it each logged step (`observe`); read `warnings` and `stopped_by` afterwards."""

    def __init__(self, spec: HealthSpec, stage: str = "grpo") -> None:
        self.spec, self.stage = spec, stage
        self.warnings: list[dict[str, Any]] = []
        self.stopped_by: dict[str, Any] | None = None
        self.rows: list[dict[str, Any]] = []  # every logged step, for the explanation of a run that learned nothing
        self._streak = dict.fromkeys(MONITORS, 0)

    def _bad(self, name: str, value: float) -> bool:
        threshold = getattr(self.spec, name)
        if threshold is None:
            return False
        if not math.isfinite(value):
            return True
        return value > threshold if MONITORS[name][1] == "above" else value < threshold

    def observe(self, step: int, logs: dict[str, Any]) -> bool:
        """Record one logged step; True when a `stop_on` monitor fired at it (training should end)."""
        self.rows.append({"step": step, **logs})
        fired = {w["metric"] for w in self.warnings}
        stop = False
        for name, (key, side) in MONITORS.items():
            value = logs.get(key)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            self._streak[name] = self._streak[name] + 1 if self._bad(name, float(value)) else 0
            if self._streak[name] < self.spec.patience or name in fired:
                continue
            threshold = getattr(self.spec, name)
            entry = warning(name, step, float(value), stage=self.stage, threshold=threshold,
                            message=f"{_WHAT[name]} {'above' if side == 'above' else 'below'} {threshold} for "
                                    f"{self.spec.patience} step(s)")
            self.warnings.append(entry)
            if name in self.spec.stop_on and self.stopped_by is None:
                self.stopped_by = entry
                stop = True
        return stop

    def callback(self):
        """A TrainerCallback that feeds this monitor and stops training when it says so (the same step on every
        process: the decision is shared, so no process waits for another that stopped)."""
        from transformers import TrainerCallback

        monitor = self

        class HealthCallback(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                if not logs or "train_runtime" in logs:  # the trainer's closing summary is not a step
                    return
                from train.distributed import any_process

                stop = monitor.observe(state.global_step, logs)
                if monitor.spec.stop_on and any_process(stop):
                    control.should_training_stop = True

        return HealthCallback()


# ------------------------------------------------------------------ a run that learned nothing


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
    return sum(values) / len(values) if values else None


def explain_no_learning_signal(adapter: str, tensors: int, grpo_logs: list[dict[str, Any]],
                               max_completion_length: int) -> str:
    """Why GRPO left `adapter` exactly as it was, from the stage's logged metrics, and what to change."""
    steps = [r for r in grpo_logs if "reward" in r]
    head = f"GRPO changed none of the {tensors} tensors of adapter '{adapter}' in {len(steps)} step(s)"
    if not steps:
        return head + " (no GRPO step was logged)."
    zero_std = sum(1 for r in steps if r.get("frac_reward_zero_std") == 1.0)
    reasons = []
    if zero_std == len(steps):
        reasons.append(f"every group's completions got equal rewards at every step (frac_reward_zero_std = 1.0 at "
                       f"{zero_std} of {len(steps)}; mean reward {_mean(steps, 'reward'):.3g}), so every advantage "
                       "was zero and there was nothing to follow")
    else:
        reasons.append(f"frac_reward_zero_std was 1.0 at {zero_std} of {len(steps)} steps")
    no_answer, clipped = _mean(steps, "completions/no_answer_share"), _mean(steps, "completions/clipped_ratio")
    if no_answer is not None:
        reasons.append(f"{no_answer:.0%} of completions had no parsable <answer>")
    if clipped is not None:
        reasons.append(f"{clipped:.0%} were cut at max_completion_length ({max_completion_length} tokens)")
    advice = ("Train SFT longer so the student writes the format, raise grpo.max_completion_length, or choose GRPO "
              "questions the student sometimes gets right (grpo.difficulty = \"student_band\").")
    return f"{head}: {'; '.join(reasons)}. {advice}"


def explain_no_questions(record: dict[str, Any]) -> str:
    """Why GRPO did not run: no candidate question had a student pass rate inside the band."""
    rates = list(record["pass_rates"].values())
    low, high = record["band"]
    at_low = sum(1 for r in rates if r <= low)
    at_high = sum(1 for r in rates if r >= high)
    return (f"no GRPO question: none of the {len(rates)} candidates had a student pass rate strictly inside "
            f"({low}, {high}) over {record['samples_per_question']} samples each ({at_low} at or below {low}, "
            f"{at_high} at or above {high}), so every group would have had equal rewards. Train SFT longer, sample "
            "more (grpo.student_samples), or widen grpo.pass_rate_band.")
