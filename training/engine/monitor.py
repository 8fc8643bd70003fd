"""Training telemetry: a rich progress bar per epoch (loss, lr, samples/s, ETA), TensorBoard scalars
and ``metrics.jsonl`` (one JSON object per logged step / evaluation). Only rank 0 writes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


class Monitor:
    """Rank-0 sink for scalars; a disabled monitor (other ranks) accepts and drops everything."""

    def __init__(self, run_dir: Path | None, *, enabled: bool, progress: bool, tensorboard: bool) -> None:
        self.enabled = enabled and run_dir is not None
        self._progress: Progress | None = None
        self._task: Any = None
        self._writer = None
        self._file = None
        self.show_progress = progress
        if not self.enabled:
            return
        assert run_dir is not None
        self._file = open(Path(run_dir) / METRICS_FILE, "a", encoding="utf-8")  # noqa: SIM115
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(Path(run_dir) / TENSORBOARD_DIR))

    # --- progress bar ----------------------------------------------------------------------
    def start_epoch(self, epoch: int, epochs: int, total_steps: int, done_steps: int = 0) -> None:
        self._epoch_t0 = time.perf_counter()
        if not (self.enabled and self.show_progress):
            return
        self._progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}  {task.fields[sps]:.1f} samples/s"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "train", total=total_steps, completed=done_steps, epoch=f"{epoch + 1}/{epochs}", loss=0.0, lr=0.0, sps=0.0
        )

    def advance(self, loss: float, lr: float, samples_per_s: float) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, loss=loss, lr=lr, sps=samples_per_s)

    def end_epoch(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    # --- scalars ---------------------------------------------------------------------------
    def log(self, kind: str, step: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"type": kind, "step": step, "time": time.time(), **values}
        assert self._file is not None
        self._file.write(json.dumps(record, default=float) + "\n")
        self._file.flush()
        if self._writer is not None:
            for key, value in values.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    self._writer.add_scalar(f"{kind}/{key}", value, step)

    def close(self) -> None:
        self.end_epoch()
        if self._writer is not None:
            self._writer.close()
        if self._file is not None:
            self._file.close()
