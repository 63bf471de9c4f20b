"""`curate decontaminate`: drop training rows whose question is a benchmark test item or a light rewrite of one."""

from __future__ import annotations

import typer

from curate.commands.stage_cli import stage_command


def register(app: typer.Typer) -> None:
    from curate.decontaminate import DecontaminateStage

    app.command("decontaminate")(stage_command(
        DecontaminateStage, input_help="stage file whose rows carry a question (.parquet or .jsonl)",
        output_help="clean rows (with --reverse: benchmark items not in INPUT)",
        rejected_help="write contaminated rows here (with contaminated_by)",
        help="Flag rows whose question (with options, and the PubMedQA context) shares a long n-gram with a benchmark "
             "item or fuzzy-matches it; boilerplate shared across the benchmark is ignored.\n\nExample: curate "
             "decontaminate -i unique.parquet -o clean.parquet --benchmark medqa:test --benchmark-path "
             "medqa:test=../shared/data/benchmarks/medqa/test.4_options.jsonl --report decon.json"))
