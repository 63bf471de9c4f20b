"""`curate dedupe`: drop exact and near-duplicate questions (and near-identical traces of one question)."""

from __future__ import annotations

from pathlib import Path

import typer

from curate.commands.common import console, user_errors


def dedupe(
    input: Path = typer.Option(..., "-i", "--input", help="stage file whose rows carry a question (.parquet or .jsonl)"),
    output: Path = typer.Option(..., "-o", "--output", help="kept rows"),
    questions: Path | None = typer.Option(None, "--questions", help="Question file, for trace rows that carry only "
                                          "question_id"),
    rejected: Path | None = typer.Option(None, "--rejected", help="write duplicates here (with dup_of, dup_score)"),
    report: Path | None = typer.Option(None, "--report", help="write the stage report (JSON) here"),
    threshold: float = typer.Option(0.9, "--threshold", min=0.0, max=1.0, help="rapidfuzz similarity (0-1) that makes "
                                    "two questions near-duplicates"),
    trace_threshold: float = typer.Option(0.9, "--trace-threshold", min=0.0, max=1.0, help="same, for the reasoning "
                                          "of traces of one question"),
    no_trace_dedupe: bool = typer.Option(False, "--no-trace-dedupe", help="keep near-identical traces of a question"),
    num_perm: int = typer.Option(64, "--num-perm", min=8, help="MinHash permutations"),
    bands: int = typer.Option(16, "--bands", min=1, help="LSH bands (must divide --num-perm)"),
) -> None:
    """Exact duplicates after normalisation (case, whitespace, punctuation, option order), then near-duplicate
    questions (MinHash LSH blocking, rapidfuzz confirmation); one representative per cluster (the first row).
    Example: curate dedupe -i kept.parquet -o unique.parquet --rejected dups.parquet --report dedupe.json"""
    from curate.commands.stage_progress import stage_progress
    from curate.dedupe import run_dedupe

    with user_errors(), stage_progress("dedupe") as progress:
        result = run_dedupe(input, output, rejected=rejected, report=report, threshold=threshold, questions=questions,
                            trace_threshold=None if no_trace_dedupe else trace_threshold, num_perm=num_perm, bands=bands,
                            progress=progress)
    extra = result.extra
    console.print(f"[green]kept[/] {result.rows_out} of {result.rows_in} rows in {result.wall_s:.1f}s -> {output}")
    console.print(f"  questions: {extra['questions']}, exact duplicates: {extra['exact_duplicates']}, near duplicates: "
                  f"{extra['near_duplicates']} ({extra['candidate_pairs']} LSH candidate pairs, "
                  f"{extra['confirmed_pairs']} confirmed), near-duplicate traces: {extra['near_duplicate_traces']}")
    if result.reasons:
        console.print("  rejected rows: " + ", ".join(f"{k} {v}" for k, v in result.reasons.items())
                      + (f" -> {rejected}" if rejected else ""))


def register(app: typer.Typer) -> None:
    app.command("dedupe")(dedupe)
