"""What every command shares: one clear line and a fitting exit code for each kind of failure."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer

from curate.console import console, is_tty

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "console", "fail", "is_tty", "user_errors"]

#: The stage could not do its work (an output could not be written, a stage failed in a run).
EXIT_FAILED = 1
#: Bad input, a bad option, or a set-up the stage refuses (nothing was written).
EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_BAD_INPUT, hint: str | None = None) -> typer.Exit:
    """Print one red line (and a hint under it) and return the Exit to raise."""
    from rich.markup import escape

    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    if hint:
        console.print(escape(hint), highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn input problems into one clear red line and exit code 2 (no traceback, nothing partial on disk: writers
    are atomic, so an error before the final rename leaves no output); an output that cannot be written (full disk,
    read-only folder) into one line naming it and exit code 1."""
    from curate.io import InputError, OutputError
    from curate.stage import StageError

    try:
        yield
    except InputError as exc:
        raise fail(str(exc)) from None
    except OutputError as exc:
        raise fail(str(exc), EXIT_FAILED) from None
    except StageError as exc:
        raise fail(str(exc), exc.exit_code, exc.hint) from None
    except (FileNotFoundError, KeyError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise fail(str(message)) from None
