"""`curate train-decoupled` in two processes (torchrun, gloo on CPU) against one process with the same effective
batch: both stages train, the run folder is written once, and the reasoning adapter matches.

Same effective batch: one process with batch 4, or two with batch 2 each (DDP averages their gradients); the data
order is the same sampler split across processes. What cannot match elementwise is the reward adapter: TRL seeds
each process's sampling with seed + rank, so two processes draw other GRPO completions than one does. So GRPO is
checked for having trained, and the student pass rates (seeded per question, whatever the process layout) for
agreeing to within one sample in a few questions (the SFT adapters differ by float rounding, which can flip a
sampled token).

Whether a GRPO step has a learning signal depends on the completions drawn (a group whose rewards are all equal gives
no gradient), and two processes draw other completions than one. So the test asserts what follows from the logged
steps whatever was drawn (`expected_reward_tensors_changed`), never that a given step learned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from curate.io import write_rows
from tests.conftest import REPO_ROOT
from tests.test_train import CONFIG_TOML, make_dataset
from tests.train_checks import expected_reward_tensors_changed

pytest.importorskip("trl")

# A shorter, gentler SFT than the other tests' (lr 0.05 x 60 steps): two float orderings of the same sums drift
# apart under a high learning rate (measured there: adapters 57% apart after 60 steps, though the first steps agree
# to 1e-7); this one still teaches the format, so GRPO has groups with unequal rewards.
SHARED = {"learning_rate = 0.05": "learning_rate = 0.03", "max_steps = 60": "max_steps = 25",
          "[export]\nmerged = true": "[export]\nmerged = false"}
#: One process keeps the config's batch 4 (SFT and GRPO); two take 2 each.
TWO_PROCESSES = {"batch_size = 4": "batch_size = 2"}
#: Measured 1.5e-3 (max |difference| over the largest weight) and 2.6e-3 (worst per-step SFT loss, relative).
ADAPTER_TOLERANCE = 1e-2
LOSS_TOLERANCE = 1e-2


def _config(path: Path, *patches: dict[str, str]) -> Path:
    text = CONFIG_TOML
    for patch in patches:
        for old, new in patch.items():
            assert old in text, old
            text = text.replace(old, new)
    path.write_text(text)
    return path


def _train(launcher: list[str], args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "COLUMNS": "200"}
    return subprocess.run([sys.executable, *launcher, "-m", "curate", "train-decoupled", *args], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=900)


def _sft_losses(run_dir: Path) -> list[float]:
    return [e["loss"] for e in map(json.loads, (run_dir / "logs" / "train.jsonl").read_text().splitlines())
            if e["stage"] == "sft" and "loss" in e]


def _relative_difference(a_dir: Path, b_dir: Path, name: str) -> float:
    from safetensors.torch import load_file

    a = load_file(str(a_dir / "adapters" / name / "adapter_model.safetensors"))
    b = load_file(str(b_dir / "adapters" / name / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a) / max(a[k].abs().max().item() for k in a)


@pytest.mark.slow
@pytest.mark.integration
def test_two_processes_train_both_stages_and_match_one_process(tmp_path):
    from train.random_model import build_random_model

    build_random_model(tmp_path / "model")
    questions, rows = make_dataset()
    write_rows(questions, tmp_path / "questions.jsonl")
    write_rows(rows, tmp_path / "kept.jsonl")
    common = ["--data", str(tmp_path / "kept.jsonl"), "--questions", str(tmp_path / "questions.jsonl"),
              "--base-model", str(tmp_path / "model")]
    one, two = tmp_path / "one", tmp_path / "two"
    proc = _train([], [*common, "--output-dir", str(one),
                       "--config", str(_config(tmp_path / "one.toml", SHARED))])
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _train(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"],
                  [*common, "--output-dir", str(two), "--config", str(_config(tmp_path / "two.toml", SHARED, TWO_PROCESSES))])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("done ") == 1  # the summary is printed once, by the first process

    runs = {d: json.loads((d / "run.json").read_text()) for d in (one, two)}
    for run_dir, run in runs.items():
        assert run["checks"]["reasoning_unchanged"] is True and run["checks"]["reward_tensors"] == 28
        assert [s["stage"] for s in run["stages"]] == ["sft", "calibrate", "grpo"]
        assert next(s for s in run["stages"] if s["stage"] == "grpo")["steps_done"] == 3
        # the reward adapter moved exactly as the logged steps' signal says, and the run's status says the same
        changed = run["checks"]["reward_tensors_changed"]
        assert changed == expected_reward_tensors_changed(run_dir, 28), changed
        assert run["status"] == ("done" if changed else "no_learning_signal")
    # one log, written once: a line per step, not one per process
    assert len(_sft_losses(two)) == 25 and not list(tmp_path.glob(".*partial*"))
    # the same effective batch gives the same SFT, to float rounding
    worst_loss = max(abs(a - b) / a for a, b in zip(_sft_losses(one), _sft_losses(two)))
    assert worst_loss < LOSS_TOLERANCE, worst_loss
    assert _relative_difference(one, two, "reasoning") < ADAPTER_TOLERANCE
    # every process sampled its share of the candidate questions; all of them kept the same set
    rates = {d: runs[d]["difficulty"]["pass_rates"] for d in runs}
    assert rates[one].keys() == rates[two].keys()
    assert max(abs(rates[one][q] - rates[two][q]) for q in rates[one]) <= 2 / 8
    assert runs[two]["difficulty"]["candidates"] == 12
