"""Checks of a training run that hold whatever completions a sampler drew."""

from __future__ import annotations

import json
from pathlib import Path


def expected_reward_tensors_changed(run_dir: Path, tensors: int) -> int:
    """How many of the reward adapter's `tensors` GRPO must have moved, given the steps it logged. A fresh adapter
    has B = 0, so A gets no gradient until B has moved. The first step with a learning signal (a group with unequal
    rewards: `frac_reward_zero_std` < 1) moves every B (and Adam's momentum keeps them moving). A moves at any later
    step that has a gradient: one with a signal, or any step at all when a KL term (beta > 0) pulls the policy, no
    longer equal to its reference, back. No step with a signal: nothing moves. Exact whichever completions were
    drawn."""
    beta = json.loads((run_dir / "config.json").read_text())["grpo"]["beta"]
    steps = [e for e in map(json.loads, (run_dir / "logs" / "train.jsonl").read_text().splitlines())
             if e["stage"] == "grpo" and "frac_reward_zero_std" in e]
    signal = [e["frac_reward_zero_std"] < 1.0 for e in steps]
    if True not in signal:
        return 0
    later = signal[signal.index(True) + 1:]
    a_moves = bool(later) if beta > 0 else any(later)
    return tensors if a_moves else tensors // 2
