"""Quiet terminal, complete log file (docs/logging.md).

Default (no ``-v``): the terminal shows this project's warnings and anybody's errors; every record from
INFO up — vLLM, Prefect, open_clip, Python warnings, ours — goes to the log file of the run:
``<run folder>/pedes.log`` once a run announces its folder (:func:`pedes_core.logs.announce_run_dir`:
training run directories, corpora), buffered until then; a command that never announces one leaves its
log in ``<tmp>/pedes-logs/`` and names the file when it holds warnings. ``-v`` shows INFO records of every
library in the terminal (``-vv``: DEBUG).

How each library is reached:

* root logger at INFO with our two handlers; Prefect would replace the root handlers when it sets up its
  logging, so ``PREFECT_LOGGING_SETTINGS_PATH`` points at a copy of Prefect's own ``logging.yml`` whose
  root / uvicorn / fastapi handlers are ours (Prefect's loggers keep their API handlers);
* vLLM: ``VLLM_CONFIGURE_LOGGING=0`` (its loggers propagate to the root instead of printing);
* transformers keeps its own stderr handler (not propagating), so quiet mode sets
  ``TRANSFORMERS_VERBOSITY=error``: its warnings are dropped, not filed, and its tqdm bars (weights
  loading/saving) are off (``HF_HUB_DISABLE_PROGRESS_BARS=1``; the project draws its own bars);
* Prefect telemetry off (``PREFECT_SERVER_ANALYTICS_ENABLED=false``, ``DO_NOT_TRACK=1``): with the
  ephemeral SQLite API its telemetry service raced the flow for the database ("database is locked").

Environment variables a user set are left as they are. ``PEDES_VERBOSE`` carries the level to worker
processes.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import tempfile
from pathlib import Path

from pedes_core.logs import ENV_VERBOSE, LOG_NAME, QuietConsoleHandler, RunFileHandler

__all__ = ["ENV_VERBOSE", "LOG_NAME", "QuietConsoleHandler", "RunFileHandler", "attach_run_dir", "setup_logging"]
_registered = False


def _prefect_logging_config() -> Path | None:
    """A copy of Prefect's logging.yml with our handlers on the root, uvicorn and fastapi loggers."""
    import importlib.util

    import yaml

    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        return None
    source = Path(list(spec.submodule_search_locations)[0]) / "logging" / "logging.yml"
    if not source.is_file():
        return None
    cfg = yaml.safe_load(source.read_text())
    cfg.setdefault("handlers", {})
    cfg["handlers"]["pedes_console"] = {"class": "pedes_core.logs.QuietConsoleHandler", "level": 0}
    cfg["handlers"]["pedes_file"] = {"class": "pedes_core.logs.RunFileHandler", "level": 0}
    ours = ["pedes_console", "pedes_file"]
    for name in ("uvicorn", "fastapi"):
        if name in cfg.get("loggers", {}):
            cfg["loggers"][name]["handlers"] = ours
    cfg["root"] = {"level": "INFO", "handlers": ours}
    target = Path(tempfile.gettempdir()) / f"pedes-prefect-logging-{os.getuid() if hasattr(os, 'getuid') else 0}.yml"
    text = yaml.safe_dump(cfg, sort_keys=False)
    if not target.is_file() or target.read_text() != text:
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(target)
    return target


def _at_exit() -> None:
    path = RunFileHandler.flush_unattached()
    if RunFileHandler._stream is not None:
        RunFileHandler._stream.flush()
    if path is not None and RunFileHandler._warnings and int(os.environ.get(ENV_VERBOSE, "0") or 0) == 0:
        print(f"library warnings ({RunFileHandler._warnings}) logged to {path}", file=sys.stderr)


def setup_logging(verbose: int = 0) -> None:
    """Configure the process (module docstring); call once, before heavy libraries are imported."""
    os.environ[ENV_VERBOSE] = str(verbose)
    env = os.environ.setdefault
    env("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env("DO_NOT_TRACK", "1")
    env("VLLM_CONFIGURE_LOGGING", "0")
    env("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")  # a busy 2-core machine
    if verbose == 0:
        env("TRANSFORMERS_VERBOSITY", "error")
        env("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
        env("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' "Loading weights" / "Writing model shards" bars
    try:
        path = _prefect_logging_config()
    except Exception:  # noqa: BLE001 - logging must never stop a command
        path = None
    if path is not None:
        env("PREFECT_LOGGING_SETTINGS_PATH", str(path))
    root = logging.getLogger()
    for h in list(root.handlers):
        if isinstance(h, QuietConsoleHandler | RunFileHandler):
            root.removeHandler(h)
    root.addHandler(QuietConsoleHandler())
    root.addHandler(RunFileHandler())
    root.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)
    logging.captureWarnings(True)
    global _registered
    if not _registered:
        atexit.register(_at_exit)
        _registered = True


def attach_run_dir(folder: str | Path, *, pin: bool = True) -> Path:
    """For commands that know their output folder: the whole log goes to ``folder/pedes.log``."""
    return RunFileHandler.attach(folder, pin=pin)
