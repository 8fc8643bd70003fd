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
* transformers installs its own stderr handler and stops propagation the first time it logs; a one-shot
  import hook (:class:`_AfterImport`) runs :func:`_file_transformers_logs` right after ``import
  transformers`` — its handler is removed, its records propagate to the root (so they are filed like
  everyone's) at WARNING (``-v``: INFO, ``-vv``: DEBUG) — and costs nothing in commands that never import
  it. Its tqdm bars (weights loading/saving) are off in quiet mode (``HF_HUB_DISABLE_PROGRESS_BARS=1``; the
  project draws its own bars);
* Prefect telemetry off (``PREFECT_SERVER_ANALYTICS_ENABLED=false``, ``DO_NOT_TRACK=1``): with the
  ephemeral SQLite API its telemetry service raced the flow for the database ("database is locked").

Environment variables a user set are left as they are. ``PEDES_VERBOSE`` carries the level to worker
processes.
"""

from __future__ import annotations

import atexit
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

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


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs ``callback(module)`` once, right after the module ``name`` is first imported (then leaves
    ``sys.meta_path``); the import itself is done by the normal finders and loader."""

    def __init__(self, name: str, callback: Callable[[ModuleType], None]):
        self.name = name
        self.callback = callback

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run, callback = loader.exec_module, self.callback

        def exec_module(module: ModuleType) -> None:
            run(module)
            try:
                callback(module)
            except Exception:  # noqa: BLE001 - logging must never stop an import
                logging.getLogger(__name__).debug("post-import hook of %s failed", fullname, exc_info=True)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _file_transformers_logs(_module: ModuleType | None = None) -> None:
    """transformers' records propagate to the root handlers instead of its own stderr handler."""
    from transformers.utils import logging as hf_logging

    verbose = int(os.environ.get(ENV_VERBOSE, "0") or 0)
    hf_logging.disable_default_handler()
    hf_logging.enable_propagation()
    if "TRANSFORMERS_VERBOSITY" in os.environ:
        return  # the user's choice of level stands
    hf_logging.set_verbosity(logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING)


def _route_transformers_logs() -> None:
    if "transformers" in sys.modules:
        _file_transformers_logs()
    elif not any(isinstance(f, _AfterImport) and f.name == "transformers" for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport("transformers", _file_transformers_logs))


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
    _route_transformers_logs()
    global _registered
    if not _registered:
        atexit.register(_at_exit)
        _registered = True


def attach_run_dir(folder: str | Path, *, pin: bool = True) -> Path:
    """For commands that know their output folder: the whole log goes to ``folder/pedes.log``."""
    return RunFileHandler.attach(folder, pin=pin)
