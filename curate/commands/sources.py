"""`curate sources list|pull`."""

from __future__ import annotations

from pathlib import Path

import typer

from curate.commands.common import console, user_errors

sources_app = typer.Typer(help="List and pull the public QA sets (and your own) into Question files.",
                          no_args_is_help=True)


@sources_app.command("list")
def list_sources() -> None:
    """Show the registered sources, their Hub copies and splits."""
    from rich.table import Table

    from sources import SOURCES

    table = Table(title="sources")
    for column in ("name", "hub id", "splits", "license", "what"):
        table.add_column(column)
    for name, module in SOURCES.items():
        table.add_row(name, module.HUB_ID or "-", ", ".join(module.SPLITS) or "-", module.LICENSE, module.DESCRIPTION)
    Console = type(console)
    Console().print(table)


def pull(**kwargs) -> None:
    """Pull a source into a Question file. Example:
    curate sources pull medqa --path ../shared/data/benchmarks/medqa/test.4_options.jsonl -o q.parquet"""
    from curate.commands.stage_cli import config_from_cli
    from sources.stage import SourcesConfig, SourceSpec, SourcesStage

    output, rejected, report = kwargs.pop("output"), kwargs.pop("rejected"), kwargs.pop("report")
    with user_errors():
        spec = config_from_cli(SourceSpec, kwargs, _KINDS)
        result = SourcesStage(SourcesConfig(sources=[spec])).run(None, output, rejected=rejected, report=report)
    console.print(f"[green]wrote[/] {result.rows_out} questions to {output}"
                  + (f" ([yellow]{result.rejected} rejected[/]: {', '.join(sorted(result.reasons))})"
                     if result.rejected else ""))


_KINDS: dict[str, str] = {}


def _pull_signature() -> None:
    import inspect

    from curate.commands.stage_cli import config_parameters
    from sources.stage import SourceSpec

    kw = inspect.Parameter.KEYWORD_ONLY
    params = config_parameters(SourceSpec)
    _KINDS.update({p.name: kind for p, kind in params})
    io = [inspect.Parameter("output", kw, annotation=Path, default=typer.Option(
              ..., "-o", "--output", help="Question file to write (.parquet or .jsonl)")),
          inspect.Parameter("rejected", kw, annotation=Path | None,
                            default=typer.Option(None, "--rejected", help="write rejected rows here")),
          inspect.Parameter("report", kw, annotation=Path | None,
                            default=typer.Option(None, "--report", help="write the stage report (JSON) here"))]
    ordered = [p for p, _ in params if p.name == "name"] + io + [p for p, _ in params if p.name != "name"]
    pull.__signature__ = inspect.Signature(ordered)
    pull.__annotations__ = {p.name: p.annotation for p in ordered}


def register(app: typer.Typer) -> None:
    _pull_signature()
    sources_app.command("pull")(pull)
    app.add_typer(sources_app, name="sources")
