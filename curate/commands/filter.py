"""`curate filter`: verify answers, check format, write the kept rows in the canonical training format."""

from __future__ import annotations

from pathlib import Path

import typer

from curate.commands.common import console, is_tty, user_errors


def filter_command(
    input: Path = typer.Option(..., "-i", "--input", help="Trace file from `curate generate` (.parquet or .jsonl)"),
    questions: Path = typer.Option(..., "--questions", help="the Question file the traces were generated from"),
    output: Path = typer.Option(..., "-o", "--output", help="kept rows (FilteredTrace) to write"),
    rejected: Path | None = typer.Option(None, "--rejected", help="write rejected rows (with reason codes) here"),
    report: Path | None = typer.Option(None, "--report", help="write the stage report (JSON) here"),
    max_tokens: int = typer.Option(8192, "--max-tokens", min=1,
                                   help="reject responses longer than this (server token count, else an estimate)"),
    min_reasoning_words: int = typer.Option(15, "--min-reasoning-words", min=0,
                                            help="reasoning shorter than this is 'short_reasoning'"),
    select: str = typer.Option("all", "--select", help="all: keep every correct sample; k: at most --k per question"),
    k: int | None = typer.Option(None, "--k", min=1, help="samples to keep per question with --select k"),
    select_by: str = typer.Option("shortest", "--select-by", help="with --select k: shortest | diverse"),
    workers: int = typer.Option(0, "--workers", min=0, help="processes judging traces (0: one per CPU, at most 8)"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid",
                                      help="reject bad rows and traces of unknown questions instead of failing"),
) -> None:
    """Verify each trace's answer against the gold letter, check its format, keep the good ones. Example:
    curate filter -i traces.parquet --questions q.parquet -o kept.parquet --rejected rejected.parquet"""
    from curate.filter import run_filter

    with user_errors():
        if select == "k" and k is None:
            raise ValueError("--select k needs --k N")
        import os

        options = dict(max_tokens=max_tokens, min_reasoning_words=min_reasoning_words, select=select, k=k,
                       select_by=select_by, workers=workers or min(os.cpu_count() or 1, 8))
        if is_tty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            with Progress("filter", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console,
                          transient=True) as progress:
                task = progress.add_task("filter", total=None)
                stage_report = run_filter(input, questions, output, rejected=rejected, report=report,
                                          skip_invalid=skip_invalid,
                                          on_progress=lambda n: progress.update(task, completed=n), **options)
        else:
            stage_report = run_filter(input, questions, output, rejected=rejected, report=report,
                                      skip_invalid=skip_invalid, **options)
    _summary(stage_report, output)


def _summary(report, output: Path) -> None:
    """One screen: kept and rejected, per reason and per source."""
    from rich.table import Table

    console.print(f"[green]kept[/] {report.rows_out} of {report.rows_in} traces -> {output} "
                  f"([yellow]{report.rejected} rejected[/], {report.wall_s:.1f}s)", highlight=False)
    if report.reasons:
        reasons = Table(title="rejected, per reason", title_justify="left")
        reasons.add_column("reason")
        reasons.add_column("rows", justify="right")
        for reason, count in report.reasons.items():
            reasons.add_row(reason, str(count))
        console.print(reasons)
    per_source = Table(title="per source", title_justify="left")
    for column in ("source", "in", "kept", "top reasons"):
        per_source.add_column(column, justify="left" if column in ("source", "top reasons") else "right")
    for source, counts in report.per_source.items():
        top = sorted(((c, r) for r, c in counts.items() if r not in ("in", "out")), reverse=True)[:3]
        per_source.add_row(source, str(counts.get("in", 0)), str(counts.get("out", 0)),
                           ", ".join(f"{r} {c}" for c, r in top))
    console.print(per_source)
    extra = report.extra
    if extra.get("mean_pass_rate") is not None:
        console.print(f"questions: {extra['questions']}, mean pass rate {extra['mean_pass_rate']:.2f}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("filter")(filter_command)
