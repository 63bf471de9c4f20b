"""`curate generate`: the teacher writes step-by-step reasoning for every question."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer

from curate.commands.stage_cli import stage_command


@contextlib.contextmanager
def _interrupt() -> Iterator[None]:
    from curate.commands.common import console

    try:
        yield
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: finished responses are kept in the cache; re-run the command to continue")
        raise typer.Exit(130) from None


def register(app: typer.Typer) -> None:
    from curate.generate.runner import GenerateStage

    app.command("generate")(stage_command(
        GenerateStage, input_help="Question file (.parquet or .jsonl)", output_help="Trace file to write (.parquet or .jsonl)",
        rejected_help=None, errors=_interrupt,
        help="Ask a teacher model for reasoning traces. Resumable: re-running the same command skips finished "
             "responses.\n\nExample: curate generate -i q.parquet -o traces.parquet --teacher Qwen/QwQ-32B --base-url "
             "http://gpu1:8000/v1 -n 4"))
