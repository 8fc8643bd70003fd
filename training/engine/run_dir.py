"""Run directories: ``<output_dir>/<run_name>-<UTC timestamp>[-n]``, created exclusively (never
overwritten), resolution of ``--resume latest|PATH``, and removal of a new run directory that a run
failing on bad input leaves without any checkpoint or result (:func:`discard_run_dir`; docs/training.md)."""

from __future__ import annotations

import datetime as _dt
import shutil
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


RESULTS_NAMES = ("results.json",)


def discard_run_dir(run_dir: str | Path | None) -> bool:
    """Remove ``run_dir`` when it holds no checkpoint and no results (a run that failed before producing
    anything: its resolved config and log alone are not a run). Returns whether it was removed."""
    if run_dir is None:
        return False
    path = Path(run_dir)
    if not path.is_dir():
        return False
    ckpts = path / CHECKPOINT_DIR
    if (ckpts.is_dir() and any(p.suffix == ".pt" for p in ckpts.iterdir())) or any(
            (path / n).exists() for n in RESULTS_NAMES):
        return False
    shutil.rmtree(path, ignore_errors=True)
    return not path.exists()


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
