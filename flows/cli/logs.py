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
  ``TRANSFORMERS_VERBOSITY=error``: its warnings are dropped, not filed;
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
import time
from pathlib import Path

from pedes_core.logs import LOG_NAME, RUN_DIR_ATTR

ENV_VERBOSE = "PEDES_VERBOSE"
OUR_PACKAGES = ("caption_gen", "training", "eval", "flows", "pedes_core", "templates", "pedes")
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_BUFFER_MAX = 20_000
_registered = False


def _ours(name: str) -> bool:
    return name.split(".", 1)[0] in OUR_PACKAGES


class QuietConsoleHandler(logging.StreamHandler):
    """stderr: our warnings and everyone's errors; with ``PEDES_VERBOSE`` ≥ 1 every INFO record (≥ 2: DEBUG)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # the current one (tests and rich swap it)
        super().emit(record)

    def filter(self, record: logging.LogRecord) -> bool:
        if hasattr(record, RUN_DIR_ATTR):
            return False
        verbose = int(os.environ.get(ENV_VERBOSE, "0") or 0)
        if verbose >= 2:
            return True
        if verbose == 1:
            return record.levelno >= logging.INFO
        return record.levelno >= logging.ERROR or (_ours(record.name) and record.levelno >= logging.WARNING)


class RunFileHandler(logging.Handler):
    """Every record to the current run's ``pedes.log``; records before a run folder is known are buffered."""

    path: Path | None = None
    pinned = False  # a command fixed the folder: announcements of nested runs do not move the log
    _buffer: list[str] = []
    _warnings = 0
    _stream = None

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter(FORMAT))

    @classmethod
    def attach(cls, folder: str | Path, *, pin: bool = False) -> Path:
        """Write from now on (and what was buffered) to ``folder/pedes.log``; ``pin``: keep it there."""
        target = Path(folder) / LOG_NAME
        if cls.pinned and not pin or cls.path == target:
            cls.pinned = cls.pinned or pin
            return cls.path or target
        cls.pinned = pin
        target.parent.mkdir(parents=True, exist_ok=True)
        if cls._stream is not None:
            cls._stream.close()
        cls._stream = open(target, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the process
        cls.path = target
        for line in cls._buffer:
            cls._stream.write(line + "\n")
        cls._buffer.clear()
        cls._stream.flush()
        return target

    def emit(self, record: logging.LogRecord) -> None:
        folder = getattr(record, RUN_DIR_ATTR, None)
        if folder is not None:
            type(self).attach(folder)
            return
        if record.levelno < logging.INFO and int(os.environ.get(ENV_VERBOSE, "0") or 0) < 2:
            return
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - a broken record must not stop the run
            return
        cls = type(self)
        if record.levelno >= logging.WARNING:
            cls._warnings += 1
        if cls._stream is not None:
            cls._stream.write(line + "\n")
            cls._stream.flush()
        elif len(cls._buffer) < _BUFFER_MAX:
            cls._buffer.append(line)

    @classmethod
    def flush_unattached(cls) -> Path | None:
        """At exit without a run folder: write the buffer to ``<tmp>/pedes-logs/`` (returns the file)."""
        if cls._stream is not None or not cls._buffer:
            return None
        folder = Path(tempfile.gettempdir()) / "pedes-logs"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"pedes-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        target.write_text("\n".join(cls._buffer) + "\n", encoding="utf-8")
        cls._buffer.clear()
        return target


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
    cfg["handlers"]["pedes_console"] = {"class": f"{__name__}.QuietConsoleHandler", "level": 0}
    cfg["handlers"]["pedes_file"] = {"class": f"{__name__}.RunFileHandler", "level": 0}
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
    if verbose == 0:
        env("TRANSFORMERS_VERBOSITY", "error")
        env("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
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
