"""A rich progress bar driven by a stage's `progress(what, done, total)` callback (rate and ETA, on stderr)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from curate.commands.common import console

ProgressCallback = Callable[[str, int, int], None]


@contextlib.contextmanager
def stage_progress(title: str) -> Iterator[ProgressCallback]:
    """Yield a callback that shows one bar per phase ("minhash", "confirm", "match"...)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:  # type: ignore[no-untyped-def]
            return Text(f"{task.speed:,.0f}/s" if task.speed else "", style="cyan")

    bars = Progress(TextColumn(f"[bold]{title}[/] {{task.description}}"), BarColumn(), MofNCompleteColumn(), Rate(),
                    TimeRemainingColumn(), console=console, disable=not console.is_terminal)
    tasks: dict[str, int] = {}

    def update(what: str, done: int, total: int) -> None:
        if what not in tasks:
            tasks[what] = bars.add_task(what, total=total)
        bars.update(tasks[what], completed=done, total=total)

    with bars:
        yield update
