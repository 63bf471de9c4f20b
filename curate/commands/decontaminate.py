"""`curate decontaminate`: drop training rows whose question is a benchmark test item or a light rewrite of one."""

from __future__ import annotations

from pathlib import Path

import typer

from curate.commands.common import console, user_errors


def _paths(values: list[str] | None) -> dict[str, str]:
    out = {}
    for value in values or []:
        spec, sep, path = value.partition("=")
        if not sep or not spec or not path:
            raise ValueError(f"bad --benchmark-path {value!r}: expected SOURCE:SPLIT=FILE, e.g. medqa:test=test.jsonl")
        out[spec] = path
    return out


def decontaminate(
    input: Path = typer.Option(..., "-i", "--input", help="stage file whose rows carry a question (.parquet or .jsonl)"),
    output: Path = typer.Option(..., "-o", "--output", help="clean rows (with --reverse: benchmark items not in INPUT)"),
    benchmark: list[str] = typer.Option(..., "--benchmark", "-b", help="SOURCE:SPLIT, repeatable: medqa:test, "
                                        "medmcqa:dev, pubmedqa:test"),
    benchmark_path: list[str] | None = typer.Option(None, "--benchmark-path", help="SOURCE:SPLIT=FILE, the native "
                                                    "file of a benchmark (default: $CURATE_BENCHMARK_DIR, else the Hub)"),
    questions: Path | None = typer.Option(None, "--questions", help="Question file, for trace rows that carry only "
                                          "question_id"),
    rejected: Path | None = typer.Option(None, "--rejected", help="write contaminated rows here (with contaminated_by)"),
    report: Path | None = typer.Option(None, "--report", help="write the stage report (JSON) here"),
    threshold: float = typer.Option(0.9, "--threshold", min=0.0, max=1.0, help="rapidfuzz similarity (0-1) that "
                                    "confirms a fuzzy match"),
    ngram: int = typer.Option(13, "--ngram", min=5, help="words in a long n-gram: sharing one is contamination"),
    reverse: bool = typer.Option(False, "--reverse", help="check the benchmarks against INPUT (a training file): "
                                 "OUTPUT gets the benchmark items INPUT does not contain, --rejected the exposed ones"),
) -> None:
    """Flag rows whose question (with options, and the PubMedQA context) shares a long n-gram with a benchmark item
    or fuzzy-matches it; boilerplate shared across the benchmark is ignored.
    Example: curate decontaminate -i unique.parquet -o clean.parquet --benchmark medqa:test
    --benchmark-path medqa:test=../shared/data/benchmarks/medqa/test.4_options.jsonl --report decon.json"""
    from curate.commands.stage_progress import stage_progress
    from curate.decontaminate import run_decontaminate

    with user_errors(), stage_progress("decontaminate") as progress:
        result = run_decontaminate(input, output, benchmarks=benchmark, benchmark_paths=_paths(benchmark_path),
                                   rejected=rejected, report=report, questions=questions, threshold=threshold,
                                   ngram=ngram, reverse=reverse, progress=progress)
    extra = result.extra
    if reverse:
        console.print(f"[green]{result.rows_out}[/] of {result.rows_in} benchmark items are not in {input} -> {output}")
        for name, count in sorted(extra["exposed_per_benchmark"].items()):
            console.print(f"  {name}: [yellow]{count}[/] items found in training")
        return
    console.print(f"[green]kept[/] {result.rows_out} of {result.rows_in} rows in {result.wall_s:.1f}s -> {output}")
    for name, count in extra["per_benchmark"].items():
        console.print(f"  {name}: {'[yellow]' if count else ''}{count}{'[/]' if count else ''} rows contaminated "
                      f"({extra['items_hit'].get(name, 0)} items)")
    if extra["per_method"]:
        console.print("  by method: " + ", ".join(f"{k} {v}" for k, v in sorted(extra["per_method"].items())))


def register(app: typer.Typer) -> None:
    app.command("decontaminate")(decontaminate)
