"""`curate scrub`: redact PHI (HIPAA Safe Harbor identifiers) from question, context, options and reasoning text;
`curate scrub train`: train the PHI tagger that runs beside the rules on an institution's own annotated notes."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperCommand

from curate.commands.stage_cli import stage_command

TRAIN = "train"


def train(
    input: Path = typer.Option(..., "-i", "--input", help="annotated notes: JSONL in the shared span format "
                               "(note_id, patient, text, spans: lists of start, end, category, value) or a folder of BRAT "
                               "standoff .txt/.ann pairs"),
    output: Path = typer.Option(..., "-o", "--output", help="the model file to write (load it with curate scrub "
                                "--model PATH)"),
    holdout: float = typer.Option(0.25, "--holdout", help="share of patients set aside and scored (0: train on "
                                  "every note, score nothing)"),
    augment: int = typer.Option(4, "--augment", min=0, help="surrogate copies of each training note (names, dates, "
                                "places, phones replaced by fakes)"),
    seed: int = typer.Option(0, "--seed", help="seed of the surrogates"),
    report: Path | None = typer.Option(None, "--report", help="write the training report (JSON) here"),
) -> None:
    """Train the PHI tagger (a CRF) on annotated notes, split by patient; report per-category recall and other tokens
    changed on the set-aside patients, alone and beside the rules.

    Example: curate scrub train -i notes.jsonl -o phi_tagger.crfsuite.gz --report train.json"""
    from curate.commands.common import user_errors
    from curate.scrub.train import train as run_train

    with user_errors():
        run_train(input, output, holdout=holdout, augment=augment, seed=seed, report=report)


class ScrubCommand(TyperCommand):
    """`curate scrub ...` runs the stage; `curate scrub train ...` hands the rest of the line to the train command
    (the stage's required -i/-o would otherwise be asked of `train` too)."""

    def parse_args(self, ctx, args):
        if args and args[0] == TRAIN:
            ctx.meta["curate_scrub_train"] = args[1:]
            return []
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        if "curate_scrub_train" in ctx.meta:
            command = typer.main.get_command(_train_app())
            with command.make_context(f"{ctx.command_path} {TRAIN}", list(ctx.meta["curate_scrub_train"]),
                                      parent=ctx) as sub:
                return command.invoke(sub)
        return super().invoke(ctx)


def _train_app() -> typer.Typer:
    app = typer.Typer(add_completion=False)
    app.command(TRAIN)(train)
    return app


def register(app: typer.Typer) -> None:
    from curate.scrub.runner import ScrubStage

    app.command("scrub", cls=ScrubCommand)(stage_command(
        ScrubStage, input_help="stage file (.parquet or .jsonl): questions or traces",
        output_help="scrubbed file; every row gains phi_found {type: count}",
        rejected_help="side file for dropped rows (written redacted)",
        help="Find and redact PHI with clinical recognizers and a learned tagger beside them; medical eponyms and drug "
             "names are left alone. `curate scrub train --help`: train the tagger on your own annotated notes.\n\n"
             "Example: curate scrub -i traces.parquet -o clean.parquet --report scrub.json"))
