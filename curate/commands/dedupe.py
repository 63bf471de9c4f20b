"""`curate dedupe`: drop exact and near-duplicate questions (and near-identical traces of one question)."""

from __future__ import annotations

import typer

from curate.commands.stage_cli import stage_command


def register(app: typer.Typer) -> None:
    from curate.dedupe import DedupeStage

    app.command("dedupe")(stage_command(
        DedupeStage, input_help="stage file whose rows carry a question (.parquet or .jsonl)",
        rejected_help="write duplicates here (with dup_of, dup_score)",
        help="Exact duplicates after normalisation (case, whitespace, punctuation, option order), then near-duplicate "
             "questions (MinHash LSH blocking, rapidfuzz confirmation); one representative per cluster (the first "
             "row).\n\nExample: curate dedupe -i kept.parquet -o unique.parquet --rejected dups.parquet --report "
             "dedupe.json"))
