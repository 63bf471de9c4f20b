"""`curate scrub`: redact PHI (HIPAA Safe Harbor identifiers) from question, context, options and reasoning text."""

from __future__ import annotations

import typer

from curate.commands.stage_cli import stage_command


def register(app: typer.Typer) -> None:
    from curate.scrub.runner import ScrubStage

    app.command("scrub")(stage_command(
        ScrubStage, input_help="stage file (.parquet or .jsonl): questions or traces",
        output_help="scrubbed file; every row gains phi_found {type: count}",
        rejected_help="side file for dropped rows (written redacted)",
        help="Find and redact PHI with presidio plus clinical recognizers; medical eponyms and drug names are left "
             "alone.\n\nExample: curate scrub -i traces.parquet -o clean.parquet --report scrub.json"))
