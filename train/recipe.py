"""One training run in any of the five configurations the recipe is judged against, written to one run folder.

    base        no training (the reference point)
    sft         SFT of one adapter (`reasoning`)
    grpo        GRPO of one fresh adapter (`policy`) on the base model
    monolithic  SFT then GRPO of the same adapter (`policy`)
    decoupled   SFT of `reasoning`; GRPO of `reward` on top of the frozen, active `reasoning`; both at inference

A run folder holds config.json (resolved), run.json (what was trained, which adapters are active at inference,
per-stage figures, checks), logs/train.jsonl, adapters/<name>/, README.md (model card) and report.json. It is
built in a hidden temp folder and renamed into place when complete, so a crash leaves nothing under the final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from curate.io import write_json
from curate.stage_report import StageReport
from train.config import TrainConfig, resolved
from train.data import TrainingData

MODES = ("base", "sft", "grpo", "monolithic", "decoupled")
REASONING, REWARD, POLICY = "reasoning", "reward", "policy"
RUN_FILE = "run.json"


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_complete(run_dir: Path, *, config: TrainConfig | None = None, base_model: str | None = None,
                data_path: str | os.PathLike[str] | None = None) -> bool:
    """A finished run folder; with the arguments, also one trained from this config, base model and data file
    (a stale run from other settings is not reused)."""
    try:
        run = json.loads((run_dir / RUN_FILE).read_text())
        if run["status"] != "done":
            return False
        if config is not None and json.loads((run_dir / "config.json").read_text()) != resolved(config):
            return False
        if base_model is not None and run["base_model"] != base_model:
            return False
        return data_path is None or run["data"].get("sha256") == file_sha256(data_path)
    except (OSError, ValueError, KeyError):
        return False


def prepare_output(output_dir: Path, *, overwrite: bool) -> Path:
    """Check the target before any work; return the temp folder to build the run in."""
    if output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise ValueError(f"{output_dir}: exists and is not empty (pass --overwrite to replace it)")
    tmp = output_dir.parent / f".{output_dir.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def finish_output(tmp: Path, output_dir: Path) -> None:
    if output_dir.exists():
        shutil.rmtree(output_dir)
    os.replace(tmp, output_dir)


def _freeze_dropout(model, name: str) -> None:
    """A frozen adapter is a fixed function: switch its LoRA dropout off so training-mode forwards match sampling."""
    import torch.nn as nn

    for module in model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if isinstance(dropouts, nn.ModuleDict) and name in dropouts:
            dropouts[name] = nn.Identity()


def _changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    import torch

    return [k for k in before if not torch.equal(before[k], after[k])]


def train_run(mode: str, data: TrainingData, base_model: str, output_dir: str | os.PathLike[str], *,
              config: TrainConfig, data_path: str | None = None, questions_path: str | None = None,
              overwrite: bool = False, card_extra: dict[str, Any] | None = None) -> StageReport:
    """Train one configuration into `output_dir`; returns (and writes to report.json) the run's StageReport."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    from train.modeling import require_train_extra

    require_train_extra()
    output_dir = Path(output_dir)
    tmp = prepare_output(output_dir, overwrite=overwrite)
    try:
        run = _train(mode, data, base_model, tmp, config=config)
        run.update(base_model=base_model, data=_provenance(data_path, data), questions=questions_path)
        write_json(resolved(config), tmp / "config.json")
        write_json({**run, "status": "done"}, tmp / RUN_FILE)
        from train.card import write_card

        write_card(tmp, run, config, extra=card_extra)
        report = StageReport(stage=f"train-{mode}", rows_in=len(data.sft), rows_out=len(data.sft),
                             reasons=dict(data.skipped), wall_s=round(sum(s.get("wall_s", 0) for s in run["stages"]), 3),
                             extra={"mode": mode, "stages": run["stages"], "checks": run["checks"],
                                    "grpo_prompts": len(data.grpo)})
        report.write(tmp / "report.json")
        finish_output(tmp, output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def _provenance(data_path: str | None, data: TrainingData) -> dict[str, Any]:
    out: dict[str, Any] = {"sft_examples": len(data.sft), "grpo_prompts": len(data.grpo),
                           "questions": len(data.questions), "grpo_skipped": data.skipped}
    if data_path:
        out.update(path=str(data_path), sha256=file_sha256(data_path))
    return out


def _train(mode: str, data: TrainingData, base_model: str, run_dir: Path, *, config: TrainConfig) -> dict[str, Any]:
    from peft import get_peft_model
    from transformers import set_seed

    from train.compose import activate, export
    from train.grpo import assert_only_trainable, train_grpo
    from train.modeling import adapter_state, load_base, lora_config
    from train.sft import train_sft

    set_seed(config.seed)
    model, tokenizer = load_base(base_model, config)
    adapters_dir, log_path = run_dir / "adapters", run_dir / "logs" / "train.jsonl"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.touch()
    work = run_dir / "trainer"
    stages: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    active: list[str] = []

    if mode == "base":
        pass
    elif mode in ("sft", "monolithic", "grpo"):
        name = REASONING if mode == "sft" else POLICY
        model = get_peft_model(model, lora_config(config.reasoning), adapter_name=name)
        if mode != "grpo":
            stages.append(train_sft(model, tokenizer, data.sft, config.sft, seed=config.seed, work_dir=work,
                                    log_path=log_path, stage="sft"))
        if mode != "sft":
            assert_only_trainable(model, {name})
            stages.append(train_grpo(model, tokenizer, data.grpo, config.grpo, seed=config.seed, work_dir=work,
                                     log_path=log_path, stage="grpo"))
        active = [name]
    else:  # decoupled
        model = get_peft_model(model, lora_config(config.reasoning), adapter_name=REASONING)
        stages.append(train_sft(model, tokenizer, data.sft, config.sft, seed=config.seed, work_dir=work,
                                log_path=log_path, stage="sft"))
        model.add_adapter(REWARD, lora_config(config.reward))
        # Both active in the forward pass; the tuner's set_adapter makes every listed adapter trainable: re-freeze.
        model.base_model.set_adapter([REASONING, REWARD])
        model.set_requires_grad(REASONING, False)
        _freeze_dropout(model, REASONING)
        assert_only_trainable(model, {REWARD})
        reasoning_before, reward_before = adapter_state(model, REASONING), adapter_state(model, REWARD)
        stages.append(train_grpo(model, tokenizer, data.grpo, config.grpo, seed=config.seed, work_dir=work,
                                 log_path=log_path, stage="grpo"))
        moved = _changed(reasoning_before, adapter_state(model, REASONING))
        if moved:
            raise RuntimeError(f"the frozen reasoning adapter changed during GRPO ({len(moved)} tensors, e.g. {moved[0]})")
        checks.update(reasoning_tensors=len(reasoning_before), reasoning_unchanged=True,
                      reward_tensors_changed=len(_changed(reward_before, adapter_state(model, REWARD))),
                      reward_tensors=len(reward_before))
        active = [REASONING, REWARD]

    adapters: dict[str, str] = {}
    if active:
        model.save_pretrained(str(adapters_dir), selected_adapters=active)
        adapters = {name: f"adapters/{name}" for name in active}
        if len(active) > 1 and config.export.combined:
            activate(model, active)
            merged_dir = run_dir / "merged" if config.export.merged else None
            written = export(model, tokenizer, active, adapters_dir, merged_dir=merged_dir)
            adapters["combined"] = "adapters/combined"
            if "merged" in written:
                checks["merged_model"] = "merged"
    shutil.rmtree(work, ignore_errors=True)
    return {"mode": mode, "adapters": adapters, "active": active, "stages": stages, "checks": checks,
            "seed": config.seed}


def run_train_decoupled(data: str | os.PathLike[str], base_model: str, output_dir: str | os.PathLike[str], *,
                        config: TrainConfig | str | os.PathLike[str] | None = None,
                        questions: str | os.PathLike[str] | None = None, mode: str = "decoupled",
                        overwrite: bool = False, report: str | os.PathLike[str] | None = None,
                        render=None) -> StageReport:
    """File-level entry point (`curate train-decoupled`, `curate run`): config and data are checked in full before
    any model is loaded, then the run is trained into `output_dir`."""
    from train.config import load_config
    from train.data import default_render, load_training_data

    if not isinstance(config, TrainConfig):
        config = load_config(config)
    if Path(output_dir).exists() and any(Path(output_dir).iterdir()) and not overwrite:
        raise ValueError(f"{output_dir}: exists and is not empty (pass --overwrite to replace it)")
    band = config.grpo.pass_rate_band if config.grpo.difficulty == "band" else None
    data_set = load_training_data(data, questions, render=render or default_render, band=band)
    if mode in ("grpo", "monolithic", "decoupled") and not data_set.grpo:
        raise ValueError(f"{data}: no GRPO prompts after difficulty selection ({data_set.skipped}); "
                         "set grpo.difficulty = 'all' or widen grpo.pass_rate_band")
    result = train_run(mode, data_set, base_model, output_dir, config=config, data_path=str(data),
                       questions_path=str(questions) if questions else None, overwrite=overwrite)
    if report:
        result.write(report)
    return result
