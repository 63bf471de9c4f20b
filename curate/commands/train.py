"""`curate train-decoupled`, `curate experiment`, `curate eval`: the two-adapter recipe, its rivals, their scores.
torch, transformers, peft and trl are imported inside the commands (the `train` extra)."""

from __future__ import annotations

from pathlib import Path

import typer

from curate.commands.common import console, user_errors

DATA_HELP = ("filtered traces (kept rows, canonical text): a .parquet or .jsonl file, a quoted glob of them "
             "('runs/demo/publish/data/train-*.parquet'), or a folder `curate publish` wrote")
QUESTIONS_HELP = "the Question file the traces were generated from (needed unless the rows carry their question)"


def train_decoupled(
    data: Path = typer.Option(..., "--data", help=DATA_HELP),
    base_model: str = typer.Option(..., "--base-model", help="Hub id or local folder (e.g. Qwen/Qwen2.5-0.5B-Instruct)"),
    output_dir: Path = typer.Option(..., "--output-dir", help="run folder to create"),
    config: Path | None = typer.Option(None, "--config", help="TOML or YAML training config (see README)"),
    questions: Path | None = typer.Option(None, "--questions", help=QUESTIONS_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing run folder"),
    report: Path | None = typer.Option(None, "--report", help="also write the stage report (JSON) here"),
    stop_on: list[str] | None = typer.Option(None, "--stop-on", help="end the run (status 'stopped') when this "
                                             "run-health monitor fires; repeatable (replaces health.stop_on): "
                                             "frac_reward_zero_std, reward_std, kl, entropy, clipped_ratio, no_answer"),
) -> None:
    """Train the reasoning adapter (SFT), then the reward adapter (GRPO) on top of it, frozen; export both and the
    exact cat-combined adapter. Exits 1 when the run ended early (stopped) or learned nothing (no_learning_signal);
    the run folder is written either way. Example:
    curate train-decoupled --data kept.parquet --questions q.parquet --base-model Qwen/Qwen2.5-0.5B-Instruct
    --output-dir runs/decoupled --config train.toml
    Several processes (GPUs, or CPU with gloo): torchrun --nproc_per_node N -m curate train-decoupled ..."""
    with user_errors():
        from train.config import load_config
        from train.recipe import run_train_decoupled

        cfg = load_config(config, {"health": {"stop_on": stop_on}} if stop_on else None)
        result = run_train_decoupled(data, base_model, output_dir, config=cfg, questions=questions,
                                     overwrite=overwrite, report=report)
    from train.distributed import is_main

    if not is_main():
        raise typer.Exit(0 if result.extra["status"] == "done" else 1)
    print_run_outcome(output_dir, result.extra)


def _stage_line(stage: dict) -> str:
    if stage["stage"] == "calibrate":
        return f"student pass rates on {stage['questions']} questions ({stage['kept']} kept)"
    done = stage.get("steps_done", stage["steps"])
    return f"{stage['stage']} {done}/{stage['steps']} steps {stage.get('tokens_per_s')} tok/s"


def print_run_outcome(output_dir: Path, extra: dict) -> None:
    """The run's stages, its warnings as a table, and its status; exit 1 unless it is done."""
    from rich.markup import escape
    from rich.table import Table

    checks = extra.get("checks", {})
    stages = ", ".join(_stage_line(s) for s in extra["stages"]) or "nothing trained"
    frozen = ("; reasoning adapter unchanged by GRPO: " + str(checks["reasoning_unchanged"])
              if "reasoning_unchanged" in checks else "")
    console.print(f"{output_dir}: {stages}{frozen}", highlight=False)
    if extra.get("warnings"):
        table = Table("metric", "stage", "step", "value", "threshold", "meaning", title="run-health warnings",
                      title_justify="left")
        for w in extra["warnings"]:
            table.add_row(w["metric"], w["stage"], str(w["step"]), f"{w['value']:.4g}", str(w["threshold"]),
                          escape(w["message"]))
        console.print(table)
    status = extra["status"]
    if status == "done":
        console.print(f"[green]done[/] {output_dir}")
        return
    console.print(f"[bold red]{status}[/]: {escape(extra.get('explanation') or '')}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def experiment(
    data: Path = typer.Option(..., "--data", help=DATA_HELP),
    base_model: str = typer.Option(..., "--base-model", help="Hub id or local folder"),
    output_dir: Path = typer.Option(..., "--output-dir", help="experiment folder (runs/, eval/, comparison.*, plots/)"),
    config: Path | None = typer.Option(None, "--config", help="TOML or YAML training config"),
    questions: Path | None = typer.Option(None, "--questions", help=QUESTIONS_HELP),
    eval_questions: Path | None = typer.Option(None, "--eval-questions",
                                               help="evaluation questions (default: hold out a share of the training ones)"),
    eval_source: str | None = typer.Option(None, "--eval-source", help="read --eval-questions as this benchmark's "
                                           "native file through `sources` (medqa, medmcqa, pubmedqa)"),
    report: Path | None = typer.Option(None, "--report", help="also write the report (JSON) here"),
) -> None:
    """Base, SFT only, GRPO only, monolithic SFT+GRPO and decoupled, on the same data and budget, then evaluated.
    Example: curate experiment --data kept.parquet --questions q.parquet --base-model DIR --output-dir runs/exp"""
    with user_errors():
        from train.config import load_config
        from train.experiment import load_eval_questions, run_experiment

        cfg = load_config(config)
        evalq = load_eval_questions(eval_questions, eval_source, limit=cfg.eval.limit) if eval_questions else None
        result = run_experiment(data, base_model, output_dir, config=cfg, questions=questions,
                                eval_questions=evalq, report=report)
    console.print((output_dir / "comparison.md").read_text(), markup=False, highlight=False, soft_wrap=True)
    console.print(f"[green]wrote[/] {result.extra['comparison']['markdown']}, stability figure "
                  f"{result.extra['comparison']['stability_plot']}")


def evaluate(
    model: str = typer.Option(..., "--model", help="a run folder (from train-decoupled/experiment) or a base model"),
    adapters: list[Path] | None = typer.Option(None, "--adapters", help="adapter folders to load on --model, all active"),
    questions: Path = typer.Option(..., "--questions", help="Question file, or a benchmark's native file with --source"),
    source: str | None = typer.Option(None, "--source", help="benchmark name: read --questions through `sources`"),
    split: str | None = typer.Option(None, "--split", help="benchmark split (with --source)"),
    output_dir: Path = typer.Option(..., "--output-dir", help="where items, metrics, comparison and plots go"),
    config: Path | None = typer.Option(None, "--config", help="config file (its [eval] section is used)"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="evaluate only the first N questions"),
    backend: str | None = typer.Option(None, "--backend", help="auto | transformers | vllm"),
) -> None:
    """Accuracy, format compliance, answer leakage, and training stability from the run's logs. Example:
    curate eval --model runs/decoupled --source medqa --questions test.4_options.jsonl --limit 200 --output-dir ev"""
    with user_errors():
        from rich.markup import escape

        from train.compare import write_comparison
        from train.config import load_config
        from train.evaluate import evaluate_target, resolve_model, training_overlap
        from train.experiment import load_eval_questions

        overrides = {"eval": {k: v for k, v in {"limit": limit, "backend": backend}.items() if v is not None}}
        cfg = load_config(config, overrides)
        qs = load_eval_questions(questions, source, split=split, limit=cfg.eval.limit)
        if not qs:
            raise ValueError(f"{questions}: no questions to evaluate")
        target = resolve_model(model, [str(a) for a in adapters or []])
        overlap = training_overlap(target, qs)
        if overlap:
            console.print(f"[yellow]warning[/]: {escape(overlap)}", highlight=False, soft_wrap=True)
        row = evaluate_target(target, qs, cfg.eval, output_dir)
        write_comparison([row], output_dir)
    console.print((output_dir / "comparison.md").read_text(), markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("train-decoupled")(train_decoupled)
    app.command("experiment")(experiment)
    app.command("eval")(evaluate)
