"""`curate sources list|pull`."""

from __future__ import annotations

from pathlib import Path

import typer

from curate.commands.common import console, user_errors, write_rejected

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


@sources_app.command("pull")
def pull(
    name: str = typer.Argument(..., help="source name (see `curate sources list`)"),
    output: Path = typer.Option(..., "-o", "--output", help="Question file to write (.parquet or .jsonl)"),
    path: Path | None = typer.Option(None, "--path", help="native release file or folder; omit to use the Hub copy"),
    split: str | None = typer.Option(None, "--split", help="split name (default: from the file name, or test)"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="keep only the first N questions"),
    config: str | None = typer.Option(None, "--config", help="Hub config (PubMedQA: pqa_labeled, pqa_artificial, ...)"),
    hub_format: bool = typer.Option(False, "--hub-format", help="--path holds Hub-format rows (a local Hub export)"),
    mapping: list[str] | None = typer.Option(None, "--map", help="custom source: KEY=COLUMN (question, answer, "
                                                "options or A/B/C..., id, context, split, or any meta key)"),
    answer_format: str = typer.Option("letter", "--answer-format", help="custom source: letter|index0|index1|text"),
    source_name: str | None = typer.Option(None, "--name", help="custom source: the name used in ids"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="reject bad rows (with a reason) instead of failing"),
    rejected: Path | None = typer.Option(None, "--rejected", help="write rejected rows here"),
    report: Path | None = typer.Option(None, "--report", help="write the stage report (JSON) here"),
) -> None:
    """Pull a source into a Question file. Example:
    curate sources pull medqa --path ../shared/data/benchmarks/medqa/test.4_options.jsonl -o q.parquet"""
    with user_errors():
        from curate.io import write_rows
        from curate.stage_report import StageCounter
        from sources import get_source

        module = get_source(name)
        options = dict(split=split, limit=limit, config=config, hub_format=hub_format, skip_invalid=skip_invalid)
        if name == "custom":
            options.update(mapping=mapping, answer_format=answer_format, source_name=source_name or "custom")
        result = module.load(str(path) if path else None, **options)
        counter = StageCounter("sources")
        for q in result.questions:
            counter.seen(q.source)
            counter.kept(q.source)
        for r in result.rejected:
            counter.seen(name)
            counter.dropped(r.reasons, name)
        write_rejected(result.rejected, rejected, "sources")
        write_rows(result.questions, output)
        if report:
            counter.report(source=name, path=str(path) if path else None).write(report)
    console.print(f"[green]wrote[/] {len(result.questions)} questions to {output}"
                  + (f" ([yellow]{len(result.rejected)} rejected[/]: "
                     f"{', '.join(sorted({c for r in result.rejected for c in r.reasons}))})" if result.rejected else ""))


def register(app: typer.Typer) -> None:
    app.add_typer(sources_app, name="sources")
