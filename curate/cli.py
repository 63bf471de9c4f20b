"""The `curate` command line. Each command group lives in `curate.commands.<name>` and imports its heavy
dependencies (torch, presidio, argilla, vllm) inside the command body, so `curate --help` starts fast."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="curate",
    help="Build, curate, review and publish clinical chain-of-thought reasoning datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help text is plain: "[run]" and "[eval]" stay as written
)

def _version(value: bool) -> None:
    if value:
        import curate

        typer.echo(f"curate {curate.__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print curate's version and exit")) -> None:
    """Build, curate, review and publish clinical chain-of-thought reasoning datasets."""


#: Modules under curate.commands, each with `register(app)`. Order is the order shown in --help.
COMMAND_MODULES = ("sources", "inspect", "generate", "filter", "verify", "dedupe", "decontaminate", "scrub", "review",
                   "train", "pipeline")


def build_app() -> typer.Typer:
    for name in COMMAND_MODULES:
        importlib.import_module(f"curate.commands.{name}").register(app)
    return app


def main() -> None:
    build_app()()
