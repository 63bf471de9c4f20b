"""Checks of a training run that hold whatever completions a sampler drew."""

from __future__ import annotations

import json
from pathlib import Path


def expected_reward_tensors_changed(run_dir: Path, tensors: int) -> int:
    """How many of the reward adapter's `tensors` GRPO must have moved, given the steps it logged: a fresh adapter
    has B = 0, so A gets no gradient until B has moved. The first step with a learning signal (a group with unequal
    rewards: `frac_reward_zero_std` < 1) moves every B (and Adam's momentum keeps them moving); A moves only at a
    later step that has a signal too. No step with a signal: nothing moves. Exact whichever completions were drawn."""
    steps = [e for e in map(json.loads, (run_dir / "logs" / "train.jsonl").read_text().splitlines())
             if e["stage"] == "grpo" and "frac_reward_zero_std" in e]
    with_signal = sum(1 for e in steps if e["frac_reward_zero_std"] < 1.0)
    return 0 if not with_signal else tensors // 2 if with_signal == 1 else tensors
