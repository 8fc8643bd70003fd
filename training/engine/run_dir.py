"""Run directories: ``<output_dir>/<run_name>-<UTC timestamp>[-n]``, created exclusively (never
overwritten), and resolution of ``--resume latest|PATH``."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from pedes_core.errors import ConfigError
from pedes_core.logs import announce_run_dir

CHECKPOINT_DIR = "checkpoints"


def create_run_dir(output_dir: str | Path, run_name: str) -> Path:
    """A new, empty run directory (``mkdir(exist_ok=False)``; a numeric suffix on collision)."""
    base = Path(output_dir)
    base.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        candidate = base / (f"{run_name}-{stamp}" + (f"-{n}" if n else ""))
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        (candidate / CHECKPOINT_DIR).mkdir()
        announce_run_dir(candidate)  # the CLI's log file goes here (docs/logging.md)
        return candidate
    raise ConfigError(f"{base}: cannot create a new run directory for {run_name!r}")


def runs_of(output_dir: str | Path, run_name: str) -> list[Path]:
    """Run directories of ``run_name`` under ``output_dir``, oldest first."""
    base = Path(output_dir)
    if not base.is_dir():
        return []
    runs = [p for p in base.iterdir() if p.is_dir() and p.name.startswith(f"{run_name}-") and (p / CHECKPOINT_DIR).is_dir()]
    return sorted(runs, key=lambda p: (p.stat().st_mtime, p.name))


def resolve_resume(resume: str, output_dir: str | Path, run_name: str) -> tuple[Path, Path]:
    """``latest`` → the newest run of ``run_name`` that has a checkpoint, and that checkpoint;
    a run directory → its latest checkpoint; a ``.pt`` file → that file and its run directory."""
    from training.engine.checkpoint import latest_checkpoint

    if resume == "latest":
        for run in reversed(runs_of(output_dir, run_name)):
            ckpt = latest_checkpoint(run)
            if ckpt is not None:
                return run, ckpt
        raise ConfigError(f"--resume latest: no checkpoint of run {run_name!r} under {output_dir}")
    path = Path(resume)
    if path.is_dir():
        ckpt = latest_checkpoint(path)
        if ckpt is None:
            raise ConfigError(f"--resume {resume}: no checkpoint in this run directory")
        return path, ckpt
    if path.is_file():
        run = path.parent.parent if path.parent.name == CHECKPOINT_DIR else path.parent
        return run, path
    raise ConfigError(f"--resume {resume}: no such run directory or checkpoint file")
