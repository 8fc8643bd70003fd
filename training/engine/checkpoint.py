"""Checkpoints: plain dicts of tensors and builtin types, written atomically, read with
``torch.load(weights_only=True)``.

Contents: ``model`` (state dict of the unwrapped method), ``optimizer``, ``scheduler``, ``scaler``,
``rng`` (python / numpy / torch / CUDA states as tensors and lists), ``method_state``
(``method.extra_state()``, e.g. the NAM store), ``progress`` (epoch, step in epoch, global step, best
validation score), ``meta`` (num_classes, num_captions, method name) and ``config`` (the resolved
recipe as JSON-compatible data). Files: ``checkpoints/step-<global step>.pt`` (every N steps and at
epoch end; the last ``keep`` are kept), ``best.pt`` (best validation score), ``final.pt``.
"""

from __future__ import annotations

import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pedes_core.errors import ConfigError
from training.engine.run_dir import CHECKPOINT_DIR

log = logging.getLogger(__name__)

STEP_RE = re.compile(r"^step-(\d+)\.pt$")
BEST_NAME = "best.pt"
FINAL_NAME = "final.pt"


def step_path(run_dir: Path, global_step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"step-{global_step:08d}.pt"


def step_checkpoints(run_dir: str | Path) -> list[Path]:
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := STEP_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The step checkpoint with the highest global step, or None."""
    found = step_checkpoints(run_dir)
    return found[-1] if found else None


def save_atomic(state: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def prune(run_dir: Path, keep: int) -> None:
    for old in step_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with a clear error for a missing/corrupt file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ConfigError(f"{path}: not a loadable checkpoint ({exc})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise ConfigError(f"{path}: not an engine checkpoint (no 'model' entry)")
    return state


def load_resumable(path: str | Path, map_location: str | torch.device = "cpu", *,
                   fallback: bool = True) -> tuple[dict[str, Any], Path]:
    """Load the checkpoint to resume from: ``path``, or — when it is a step checkpoint that cannot be
    loaded (truncated by a kill, corrupt) and ``fallback`` — the newest older step checkpoint of the same
    run that loads, with a warning naming both. Raises :class:`ConfigError` naming every file tried."""
    path = Path(path)
    try:
        return load_checkpoint(path, map_location), path
    except ConfigError as first:
        m = STEP_RE.match(path.name)
        if not fallback or m is None:
            raise
        step = int(m.group(1))
        older = [p for p in step_checkpoints(path.parent.parent) if int(STEP_RE.match(p.name).group(1)) < step]
        tried = [str(first)]
        for cand in reversed(older):
            try:
                state = load_checkpoint(cand, map_location)
            except ConfigError as exc:
                tried.append(str(exc))
                continue
            log.warning("checkpoint %s cannot be loaded; resuming from the previous good one, %s (%s)",
                        path, cand, first)
            return state, cand
        raise ConfigError(f"cannot resume: {'; '.join(tried)}"
                          + ("" if older else f"; no earlier step checkpoint in {path.parent}")) from None


# --- RNG state as weights_only-safe data ---------------------------------------------------
def capture_rng() -> dict[str, Any]:
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": {
            "name": np_name,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
