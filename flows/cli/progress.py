"""Progress display for long CLI steps: a rich progress bar on stderr (hidden when stderr is not a terminal).

Wiring only: library code reports through callbacks (``on_shard(shard, stats, skipped)`` and the like);
these helpers turn the calls into a bar and leave a short summary to the command.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def _progress():
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True, disable=not console.is_terminal)


@contextmanager
def shard_progress(label: str, total: int | None = None) -> Iterator[Callable[[int, dict[str, Any], bool], None]]:
    """Yields an ``on_shard`` callback that advances a bar of ``label`` (rows so far in the description)."""
    rows = 0
    with _progress() as bar:
        task = bar.add_task(label, total=total)

        def on_shard(shard: int, stats: dict[str, Any], skipped: bool) -> None:
            nonlocal rows
            rows += int(stats.get("rows", 0))
            bar.update(task, advance=1, description=f"{label}: shard {shard} ({rows} rows)")

        yield on_shard


@contextmanager
def step_progress(label: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n=1)`` for a bar of ``label``."""
    with _progress() as bar:
        task = bar.add_task(label, total=total)

        def advance(n: int = 1) -> None:
            bar.update(task, advance=n)

        yield advance


@contextmanager
def task_progress() -> Iterator[Callable[[str, int | None], Callable[[int], None]]]:
    """Yields ``start(label, total) -> advance(n)``: one bar per task the library starts (eval targets, ...)."""
    with _progress() as bar:
        def start(label: str, total: int | None = None) -> Callable[[int], None]:
            task = bar.add_task(label, total=total)
            return lambda n=1: bar.update(task, advance=n)

        yield start
