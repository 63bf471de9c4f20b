"""One progress callback shape for every stage, and the rich display that draws it.

A stage reports `progress(phase, done, total, note)`: the phase names what it is doing ("judge", "minhash",
"generate"), `done` and `total` count its units (total None while unknown), `note` is a short live figure such as
"12 req/s, 3 errors". The same callback drives one command's bars and `curate run`'s single live display.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol


class Progress(Protocol):
    def __call__(self, phase: str, done: int, total: int | None = None, note: str | None = None) -> None: ...


def no_progress(phase: str, done: int, total: int | None = None, note: str | None = None) -> None:
    """The callback of a stage nobody watches."""


class ProgressDisplay:
    """Rich bars, one per (stage, phase), with rate and ETA; drawn only on a terminal."""

    def __init__(self, enabled: bool | None = None) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from curate.console import console, is_tty

        self.enabled = is_tty() if enabled is None else enabled
        self.bars = Progress(TextColumn("[bold]{task.fields[stage]}[/] {task.description}"), BarColumn(bar_width=30),
                             MofNCompleteColumn(), _Rate(), TimeRemainingColumn(), TextColumn("{task.fields[note]}"),
                             console=console, disable=not self.enabled, transient=False)
        self._tasks: dict[tuple[str, str], int] = {}

    def callback(self, stage: str) -> Progress:
        """The callback a stage gets: its phases become bars labelled with the stage's name."""

        def update(phase: str, done: int, total: int | None = None, note: str | None = None) -> None:
            key = (stage, phase)
            task = self._tasks.get(key)
            if task is None:
                task = self._tasks[key] = self.bars.add_task(phase, total=total, stage=stage, note=note or "")
            self.bars.update(task, completed=done, total=total, note=note or "")

        return update

    def __enter__(self) -> ProgressDisplay:
        self.bars.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.__exit__(*exc)


class _Rate:
    """Units per second of a bar (rich's columns are classes; built lazily so importing this module stays cheap)."""

    def __new__(cls):  # type: ignore[misc]
        from rich.progress import ProgressColumn
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task) -> Text:  # type: ignore[no-untyped-def]
                return Text(f"{task.speed:,.1f}/s" if task.speed else "", style="cyan")

        return Rate()


@contextlib.contextmanager
def stage_progress(stage: str, enabled: bool | None = None) -> Iterator[Progress]:
    """The progress callback of one stage run from the command line."""
    with ProgressDisplay(enabled) as display:
        yield display.callback(stage)
