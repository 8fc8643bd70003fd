"""A rich progress bar for captioning runs: images done, images/s, captions accepted / rejected."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class CaptionProgress:
    """Context manager; :meth:`update` is the engine's ``progress`` callback."""

    def __init__(self, total: int = 0, *, enabled: bool = True, console: Console | None = None):
        self.accepted = 0
        self.rejected = 0
        self.images = 0
        self._progress = Progress(
            TextColumn("[bold]captioning"), BarColumn(), MofNCompleteColumn(), TextColumn("images"),
            TextColumn("{task.fields[rate]} img/s"), TextColumn("accepted {task.fields[accepted]}"),
            TextColumn("rejected {task.fields[rejected]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console or Console(stderr=True), disable=not enabled, transient=False,
        )
        self._task = self._progress.add_task("caption", total=total or None, rate="-", accepted=0, rejected=0)

    def set_total(self, total: int, already_done: int = 0) -> None:
        self._progress.update(self._task, total=total, completed=already_done)

    def update(self, images: int, accepted: int, rejected: int) -> None:
        self.images += images
        self.accepted += accepted
        self.rejected += rejected
        task = self._progress.tasks[0]
        elapsed = task.elapsed or 0.0
        rate = f"{self.images / elapsed:.1f}" if elapsed > 0 and self.images else "-"
        self._progress.update(self._task, advance=images, rate=rate, accepted=self.accepted, rejected=self.rejected)

    def __enter__(self) -> CaptionProgress:
        self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._progress.stop()
