"""`curate filter`: verify answers, check format, write the kept rows in the canonical training format."""

from __future__ import annotations

import typer

from curate.commands.stage_cli import stage_command


def register(app: typer.Typer) -> None:
    from curate.filter import FilterStage

    app.command("filter")(stage_command(
        FilterStage, input_help="Trace file from `curate generate` (.parquet or .jsonl)",
        output_help="kept rows (FilteredTrace) to write",
        help="Verify each trace's answer against the gold letter, check its format, keep the good ones.\n\n"
             "Example: curate filter -i traces.parquet --questions q.parquet -o kept.parquet --rejected rejected.parquet"))
