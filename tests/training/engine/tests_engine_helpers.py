"""Helpers shared by the engine tests (imported by module name; pytest's rootdir conftest mode puts
this directory on sys.path)."""

from __future__ import annotations

import json
from pathlib import Path


def train_losses(run_dir: Path) -> list[tuple[int, float]]:
    """(global step, loss) of every ``train`` record of a run's metrics.jsonl."""
    out = []
    for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["type"] == "train":
            out.append((rec["step"], rec["loss"]))
    return out
