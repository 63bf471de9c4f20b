"""The one console curate writes to (stderr, so stdout stays for data), shared by the CLI and the stages' progress."""

from __future__ import annotations

from rich.console import Console

#: Messages, progress bars and summaries go to stderr.
console = Console(stderr=True)


def is_tty() -> bool:
    """Whether a person is watching (live progress bars are drawn only then)."""
    return console.is_terminal
