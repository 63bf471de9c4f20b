"""`curate inspect FILE`: what is in a stage file."""

from __future__ import annotations

from pathlib import Path

import typer

from curate.commands.common import user_errors


def inspect(
    path: Path = typer.Argument(..., help="a stage file (.parquet or .jsonl)"),
    rows: int = typer.Option(3, "--rows", "-n", min=0, help="how many rows to show"),
) -> None:
    """Row count, schema, a few rows, and counts per source and split."""
    from collections import Counter

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from curate.io import read_rows

    out = Console()
    with user_errors():
        data = read_rows(path)
    columns: dict[str, set[str]] = {}
    for row in data:
        for key, value in row.items():
            columns.setdefault(key, set()).add(type(value).__name__ if value is not None else "null")
    out.print(f"[bold]{path}[/]: {len(data)} rows, {len(columns)} columns")
    schema = Table(title="schema", show_lines=False)
    schema.add_column("column")
    schema.add_column("types")
    schema.add_column("nulls", justify="right")
    for key, types in columns.items():
        nulls = sum(1 for row in data if row.get(key) is None)
        schema.add_row(key, " | ".join(sorted(types)), str(nulls))
    out.print(schema)
    for index, row in enumerate(data[:rows]):
        # One row per panel, a field per line: stage rows are wide (question, options, reasoning...).
        from rich.panel import Panel

        body = "\n".join(f"[bold]{key}[/]: {escape(_short(value))}" for key, value in row.items())
        out.print(Panel(body, title=f"row {index}", title_align="left"))
    if data and "source" in columns:
        counts = Counter((row.get("source"), row.get("split")) for row in data)
        by = Table(title="per source / split")
        for col in ("source", "split", "rows"):
            by.add_column(col)
        for (source, split), n in sorted(counts.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
            by.add_row(str(source), str(split), str(n))
        out.print(by)


def _short(value: object, width: int = 120) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)
