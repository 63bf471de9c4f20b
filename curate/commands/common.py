"""What every command shares: clean failure on bad input, the console, writing a stage's side files."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import typer
from rich.console import Console

console = Console(stderr=True)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn input problems into one clear red line and exit code 2 (no traceback, nothing partial on disk:
    writers are atomic, so an error before the final rename leaves no output)."""
    from rich.markup import escape

    from curate.io import InputError

    try:
        yield
    except InputError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except (FileNotFoundError, KeyError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        console.print(f"[bold red]error:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def write_rejected(rejected: list[Any], path: str | os.PathLike[str] | None, stage: str) -> None:
    """Write rejected rows (with reason codes) to the side file, when one was asked for."""
    if path is None:
        return
    from curate.io import write_rows

    write_rows([r.as_row(stage) for r in rejected], path)


def is_tty() -> bool:
    return sys.stderr.isatty()
