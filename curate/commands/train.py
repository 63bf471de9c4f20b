"""`curate train-decoupled`, `curate experiment`, `curate eval`: the two-adapter recipe, its rivals, their scores.
torch, transformers, peft and trl are imported inside the commands (the `train` extra)."""

from __future__ import annotations

from pathlib import Path

import typer

from curate.commands.common import console, user_errors

DATA_HELP = "filtered traces (kept rows, canonical text), .parquet or .jsonl"
QUESTIONS_HELP = "the Question file the traces were generated from (needed unless the rows carry their question)"


def train_decoupled(
    data: Path = typer.Option(..., "--data", help=DATA_HELP),
    base_model: str = typer.Option(..., "--base-model", help="Hub id or local folder (e.g. Qwen/Qwen2.5-0.5B-Instruct)"),
    output_dir: Path = typer.Option(..., "--output-dir", help="run folder to create"),
    config: Path | None = typer.Option(None, "--config", help="TOML or YAML training config (see README)"),
    questions: Path | None = typer.Option(None, "--questions", help=QUESTIONS_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing run folder"),
    report: Path | None = typer.Option(None, "--report", help="also write the stage report (JSON) here"),
) -> None:
    """Train the reasoning adapter (SFT), then the reward adapter (GRPO) on top of it, frozen; export both and the
    exact cat-combined adapter. Example:
    curate train-decoupled --data kept.parquet --questions q.parquet --base-model Qwen/Qwen2.5-0.5B-Instruct
    --output-dir runs/decoupled --config train.toml"""
    with user_errors():
        from train.recipe import run_train_decoupled

        result = run_train_decoupled(data, base_model, output_dir, config=config, questions=questions,
                                     overwrite=overwrite, report=report)
    checks = result.extra.get("checks", {})
    console.print(f"[green]trained[/] {output_dir}: " + ", ".join(
        f"{s['stage']} {s['steps']} steps {s.get('tokens_per_s')} tok/s" for s in result.extra["stages"])
        + f"; reasoning adapter unchanged by GRPO: {checks.get('reasoning_unchanged')}")


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
    console.print(f"[green]wrote[/] {result.extra['comparison']['markdown']}, plots in {output_dir / 'plots'}")


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
        from train.config import load_config
        from train.evaluate import evaluate_target, resolve_model, write_comparison
        from train.experiment import load_eval_questions

        overrides = {"eval": {k: v for k, v in {"limit": limit, "backend": backend}.items() if v is not None}}
        cfg = load_config(config, overrides)
        qs = load_eval_questions(questions, source, split=split, limit=cfg.eval.limit)
        if not qs:
            raise ValueError(f"{questions}: no questions to evaluate")
        row = evaluate_target(resolve_model(model, [str(a) for a in adapters or []]), qs, cfg.eval, output_dir)
        write_comparison([row], output_dir)
    console.print((output_dir / "comparison.md").read_text(), markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("train-decoupled")(train_decoupled)
    app.command("experiment")(experiment)
    app.command("eval")(evaluate)
