"""One training run in any of the five configurations the recipe is judged against, written to one run folder.

    base        no training (the reference point)
    sft         SFT of one adapter (`reasoning`)
    grpo        GRPO of one fresh adapter (`policy`) on the base model (KL reference: the base model)
    monolithic  SFT then GRPO of the same adapter (`policy`) (KL reference: a frozen copy of it after SFT)
    decoupled   SFT of `reasoning`; GRPO of `reward` on top of the frozen, active `reasoning`; both at inference
                (KL reference: base + reasoning, reward off)

Between SFT and GRPO the student's pass rates choose the GRPO questions (`grpo.difficulty = "student_band"`). A run
ends `done`, `stopped` (a run-health monitor named in `health.stop_on` fired) or `no_learning_signal` (no question
in the band, or GRPO left its adapter exactly as it was), with the reason in run.json's `explanation`.

A run folder holds config.json (resolved), run.json (what was trained, which adapters are active at inference,
per-stage figures, checks), logs/train.jsonl, adapters/<name>/, README.md (model card) and report.json. It is
built in a hidden temp folder and renamed into place when complete, so a crash leaves nothing under the final name.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from curate.io import write_json
from train.config import TrainConfig, resolved
from train.data import TrainingData, data_sha256
from train.distributed import is_main
from train.modeling import adapter_state
from train.report import TrainReport

MODES = ("base", "sft", "grpo", "monolithic", "decoupled")
GRPO_MODES = ("grpo", "monolithic", "decoupled")
REASONING, REWARD, POLICY = "reasoning", "reward", "policy"
#: The monolithic run's KL reference: a frozen copy of `policy` taken after SFT (never saved).
POLICY_REF = "policy_ref"
RUN_FILE = "run.json"
#: How a run can end. done: trained as asked; stopped: a `stop_on` monitor ended it early; no_learning_signal: GRPO
#: had nothing to learn from (no question in the band, or the adapter did not change). All three are finished runs.
STATUSES = ("done", "stopped", "no_learning_signal")


def is_complete(run_dir: Path, *, config: TrainConfig | None = None, base_model: str | None = None,
                data_path: str | os.PathLike[str] | None = None) -> bool:
    """A finished run folder (any of STATUSES); with the arguments, also one trained from this config, base model and data file
    (a stale run from other settings is not reused)."""
    try:
        run = json.loads((run_dir / RUN_FILE).read_text())
        if run["status"] not in STATUSES:
            return False
        if config is not None and json.loads((run_dir / "config.json").read_text()) != resolved(config):
            return False
        if base_model is not None and run["base_model"] != base_model:
            return False
        return data_path is None or run["data"].get("sha256") == data_sha256(data_path)
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
              overwrite: bool = False, card_extra: dict[str, Any] | None = None) -> TrainReport:
    """Train one configuration into `output_dir`; returns (and writes to report.json) the run's TrainReport.

    In a multi-process launch every process trains; the first one writes the run folder, the others work in a
    private temp folder that is removed at the end."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    from train.distributed import barrier, is_main
    from train.modeling import require_train_extra

    require_train_extra()
    output_dir = Path(output_dir)
    main = is_main()
    tmp = prepare_output(output_dir, overwrite=overwrite) if main else Path(tempfile.mkdtemp(prefix="curate-train-"))
    try:
        run = _train(mode, data, base_model, tmp, config=config)
        run.update(base_model=base_model, data=_provenance(data_path, data), questions=questions_path)
        report = TrainReport(stage=f"train-{mode}", rows_in=len(data.sft), rows_out=len(data.sft),
                             reasons=dict(data.skipped), wall_s=round(sum(s.get("wall_s", 0) for s in run["stages"]), 3),
                             extra={"mode": mode, "status": run["status"], "explanation": run["explanation"],
                                    "warnings": run["warnings"], "stopped_by": run["stopped_by"],
                                    "stages": run["stages"], "checks": run["checks"],
                                    "grpo_prompts": len(data.grpo), "difficulty": _summary(run["difficulty"])})
        if main:
            from train.card import write_card

            write_json(resolved(config), tmp / "config.json")
            write_json(run, tmp / RUN_FILE)
            write_card(tmp, run, config, extra=card_extra)
            report.write(tmp / "report.json")
        barrier()
        if main:
            finish_output(tmp, output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not main:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def _summary(difficulty: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in difficulty.items() if k != "pass_rates"}


def _provenance(data_path: str | None, data: TrainingData) -> dict[str, Any]:
    out: dict[str, Any] = {"sft_examples": len(data.sft), "grpo_prompts": len(data.grpo),
                           "questions": len(data.questions), "grpo_skipped": data.skipped}
    if data_path:
        out.update(path=str(data_path), sha256=data_sha256(data_path))
    return out


def _snapshot(model, source: str, name: str) -> None:
    """A frozen copy of adapter `source` named `name` (the monolithic run's KL reference); what trains is unchanged."""
    import copy

    trainable = {k for k, p in model.named_parameters() if p.requires_grad}
    model.add_adapter(name, copy.deepcopy(model.peft_config[source]))
    params = dict(model.named_parameters())
    for key, param in params.items():
        param.requires_grad_(key in trainable)
        if f".{name}." in key:
            param.data.copy_(params[key.replace(f".{name}.", f".{source}.")].data)
    _freeze_dropout(model, name)


def add_reward_adapter(model, config: TrainConfig) -> None:
    """Stage 2's setup: a fresh `reward` adapter (B = 0) active on top of `reasoning`, which stays active, frozen,
    without dropout; only `reward` trains."""
    from transformers import set_seed

    from train.modeling import lora_config

    set_seed(config.seed)  # the reward adapter's init does not depend on what SFT drew
    model.add_adapter(REWARD, lora_config(config.reward))
    # Both active in the forward pass; the tuner's set_adapter makes every listed adapter trainable: re-freeze.
    model.base_model.set_adapter([REASONING, REWARD])
    model.set_requires_grad(REASONING, False)
    _freeze_dropout(model, REASONING)


class _Run:
    """What one run accumulates on its way: stages, checks, warnings, and how it ended."""

    def __init__(self) -> None:
        self.stages: list[dict[str, Any]] = []
        self.checks: dict[str, Any] = {}
        self.warnings: list[dict[str, Any]] = []
        self.difficulty: dict[str, Any] = {}
        self.status, self.explanation, self.stopped_by = "done", None, None

    def end(self, status: str, explanation: str | None = None) -> None:
        if self.status == "done":
            self.status, self.explanation = status, explanation


def _train(mode: str, data: TrainingData, base_model: str, run_dir: Path, *, config: TrainConfig) -> dict[str, Any]:
    from peft import get_peft_model
    from transformers import set_seed

    from train.compose import activate, export
    from train.health import warning
    from train.modeling import load_model, load_tokenizer, lora_config
    from train.sft import check_lengths, train_sft

    tokenizer = load_tokenizer(base_model)
    run = _Run()
    run.warnings.extend(data.warnings)
    if mode in ("sft", "monolithic", "decoupled"):
        dropped = check_lengths(tokenizer, data.sft, config.sft.max_length)
        if dropped:
            run.warnings.append(warning("sft_prompt_too_long", 0, dropped, stage="sft", threshold=config.sft.max_length,
                                        message=f"{dropped} of {len(data.sft)} SFT examples have a prompt of at least "
                                                "sft.max_length tokens and are dropped"))
    set_seed(config.seed)
    model = load_model(base_model, config)
    adapters_dir, log_path = run_dir / "adapters", run_dir / "logs" / "train.jsonl"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.touch()
    work = run_dir / "trainer"
    active: list[str] = []

    def sft() -> None:
        run.stages.append(train_sft(model, tokenizer, data.sft, config.sft, seed=config.seed, work_dir=work,
                                    log_path=log_path, stage="sft"))

    if mode == "sft":
        model = get_peft_model(model, lora_config(config.reasoning), adapter_name=REASONING)
        sft()
        active = [REASONING]
    elif mode != "base":
        first = REASONING if mode == "decoupled" else POLICY
        model = get_peft_model(model, lora_config(config.reasoning), adapter_name=first)
        if mode != "grpo":
            sft()
        prompts = _grpo_prompts(model, tokenizer, data, config, run)
        active = [first]
        if prompts and mode == "decoupled":
            add_reward_adapter(model, config)
            reasoning_before = adapter_state(model, REASONING)
            _grpo(model, tokenizer, prompts, REWARD, [REASONING], config, run, work=work, log_path=log_path)
            moved = _changed(reasoning_before, adapter_state(model, REASONING))
            if moved:
                raise RuntimeError(f"the frozen reasoning adapter changed during GRPO ({len(moved)} tensors, e.g. "
                                   f"{moved[0]})")
            run.checks.update(reasoning_tensors=len(reasoning_before), reasoning_unchanged=True)
            active = [REASONING, REWARD]
        elif prompts:
            reference = []  # GRPO only: the base model
            if mode == "monolithic" and config.grpo.beta:
                _snapshot(model, POLICY, POLICY_REF)
                reference = [POLICY_REF]
            _grpo(model, tokenizer, prompts, POLICY, reference, config, run, work=work, log_path=log_path)

    adapters = {name: f"adapters/{name}" for name in active}
    if len(active) > 1 and config.export.combined:
        adapters["combined"] = "adapters/combined"
    if active and is_main():
        model.save_pretrained(str(adapters_dir), selected_adapters=active)
        if "combined" in adapters:
            activate(model, active)
            merged_dir = run_dir / "merged" if config.export.merged else None
            if "merged" in export(model, tokenizer, active, adapters_dir, merged_dir=merged_dir):
                run.checks["merged_model"] = "merged"
    shutil.rmtree(work, ignore_errors=True)
    return {"mode": mode, "status": run.status, "explanation": run.explanation, "warnings": run.warnings,
            "stopped_by": run.stopped_by, "adapters": adapters, "active": active, "stages": run.stages,
            "checks": run.checks, "difficulty": run.difficulty, "seed": config.seed}


def _grpo_prompts(model, tokenizer, data: TrainingData, config: TrainConfig, run: _Run) -> list[dict[str, Any]]:
    """The GRPO set: by the student's pass rate (sampled now, from the model GRPO starts from) or as loaded."""
    spec = config.grpo
    if spec.difficulty != "student_band":
        run.difficulty = {"by": spec.difficulty, "band": list(spec.pass_rate_band) if spec.difficulty != "all" else None,
                          "candidates": len(data.grpo), "kept": len(data.grpo)}
        return data.grpo
    from train.calibrate import select_by_student
    from train.health import explain_no_questions
    from train.stage_stats import measure

    stats: dict[str, Any] = {"stage": "calibrate", "questions": 0, "samples": 0}
    with measure(stats):
        prompts, run.difficulty = select_by_student(model, tokenizer, data.grpo, spec, seed=config.seed)
    stats.update(questions=run.difficulty["candidates"], samples=run.difficulty["candidates"] * spec.student_samples,
                 kept=len(prompts))
    run.stages.append(stats)
    if not prompts:
        run.end("no_learning_signal", explain_no_questions(run.difficulty))
    return prompts


def _grpo(model, tokenizer, prompts: list[dict[str, Any]], trained: str, reference: list[str], config: TrainConfig,
          run: _Run, *, work: Path, log_path: Path) -> None:
    """GRPO of adapter `trained`; records its figures, the monitors' warnings, and whether the adapter moved."""
    from train.grpo import assert_only_trainable, train_grpo
    from train.health import HealthMonitor, explain_no_learning_signal, warning

    assert_only_trainable(model, {trained})
    before = adapter_state(model, trained)
    monitor = HealthMonitor(config.health, stage="grpo")
    stats = train_grpo(model, tokenizer, prompts, config.grpo, seed=config.seed, work_dir=work, log_path=log_path,
                       reference=reference, monitor=monitor)
    run.stages.append(stats)
    if stats.get("untested_stack"):
        run.warnings.append(warning("vllm_stack_untested", 0, 0, stage="grpo", message=stats["untested_stack"]))
    changed = _changed(before, adapter_state(model, trained))
    run.checks.update({f"{trained}_tensors": len(before), f"{trained}_tensors_changed": len(changed)})
    run.warnings.extend(monitor.warnings)
    if monitor.stopped_by is not None:
        run.stopped_by = monitor.stopped_by
        run.end("stopped", f"stopped at GRPO step {monitor.stopped_by['step']}: {monitor.stopped_by['metric']} = "
                           f"{monitor.stopped_by['value']:.4g} ({monitor.stopped_by['message']})")
    elif not changed:
        run.end("no_learning_signal", explain_no_learning_signal(trained, len(before), monitor.rows,
                                                                 config.grpo.max_completion_length))


def teacher_band(config: TrainConfig) -> tuple[float, float] | None:
    """The band applied when the data is loaded: the teacher's, if that is how GRPO questions are chosen (the
    student's band is applied after SFT, to every question)."""
    return config.grpo.pass_rate_band if config.grpo.difficulty == "teacher_band" else None


def announce(data: TrainingData) -> None:
    """Say the data's warnings before hours are spent training on it (they are in run.json's `warnings` too)."""
    if data.warnings and is_main():
        from rich.markup import escape

        from curate.console import console

        for w in data.warnings:
            console.print(f"[yellow]warning[/]: {escape(w['message'])}", highlight=False, soft_wrap=True)


def require_grpo_prompts(data_path: str | os.PathLike[str], data: TrainingData) -> None:
    if not data.grpo:
        raise ValueError(f"{data_path}: no GRPO prompts after difficulty selection ({data.skipped}); "
                         "set grpo.difficulty = 'all' or widen grpo.pass_rate_band")


def run_train_decoupled(data: str | os.PathLike[str], base_model: str, output_dir: str | os.PathLike[str], *,
                        config: TrainConfig | str | os.PathLike[str] | None = None,
                        questions: str | os.PathLike[str] | None = None, mode: str = "decoupled",
                        overwrite: bool = False, report: str | os.PathLike[str] | None = None,
                        render=None) -> TrainReport:
    """File-level entry point (`curate train-decoupled`, `curate run`): config and data are checked in full before
    any model is loaded, then the run is trained into `output_dir`."""
    from train.config import load_config
    from train.data import default_render, load_training_data

    if not isinstance(config, TrainConfig):
        config = load_config(config)
    if Path(output_dir).exists() and any(Path(output_dir).iterdir()) and not overwrite:
        raise ValueError(f"{output_dir}: exists and is not empty (pass --overwrite to replace it)")
    data_set = load_training_data(data, questions, render=render or default_render, band=teacher_band(config))
    announce(data_set)
    if mode in GRPO_MODES:
        require_grpo_prompts(data, data_set)
    result = train_run(mode, data_set, base_model, output_dir, config=config, data_path=str(data),
                       questions_path=str(questions) if questions else None, overwrite=overwrite)
    if report:
        result.write(report)
    return result
