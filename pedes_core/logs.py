"""Telling the log setup where a run's folder is (docs/logging.md).

Library code does not configure logging; it announces the folder it writes into with
:func:`announce_run_dir` (a log record carrying :data:`RUN_DIR_ATTR`). The ``pedes`` CLI's file handler
then writes the run's log — library INFO/WARNING records included — to ``<folder>/pedes.log``. Outside the
CLI the record is an ordinary debug message.

The CLI's handlers live here too (light to import: Prefect's server subprocess loads them by name from
the logging config the CLI writes): :class:`QuietConsoleHandler` and :class:`RunFileHandler`.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RUN_DIR_ATTR = "pedes_run_dir"
LOG_NAME = "pedes.log"
ENV_VERBOSE = "PEDES_VERBOSE"
OUR_PACKAGES = ("caption_gen", "training", "eval", "flows", "pedes_core", "templates", "pedes")
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_BUFFER_MAX = 20_000
_LOGGER = logging.getLogger("pedes.run")


def announce_run_dir(path: str | Path) -> None:
    """Announce that this process now writes its outputs into ``path`` (its log goes to ``path/pedes.log``)."""
    if _LOGGER.level == logging.NOTSET:
        _LOGGER.setLevel(logging.DEBUG)  # reach the handlers whatever the root level is
    _LOGGER.debug("run folder: %s", path, extra={RUN_DIR_ATTR: str(path)})


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
        if _reports_user_error(record):
            return False  # the command prints the error as one line; the traceback stays in the log file
        return record.levelno >= logging.ERROR or (_ours(record.name) and record.levelno >= logging.WARNING)


@functools.cache
def _user_error_names() -> tuple[str, ...]:
    """Names of :class:`pedes_core.errors.PedesError` and its subclasses (computed once: a filter runs per record)."""
    from pedes_core.errors import PedesError

    names, todo = [], [PedesError]
    while todo:
        cls = todo.pop()
        names.append(cls.__name__)
        todo.extend(cls.__subclasses__())
    return tuple(names)


def _reports_user_error(record: logging.LogRecord) -> bool:
    """A library's record (Prefect's "task run failed" / "finished in state Failed") about one of our
    user-input errors (:class:`pedes_core.errors.PedesError`), which the CLI reports itself."""
    from pedes_core.errors import PedesError

    if _ours(record.name):
        return False
    if record.exc_info and isinstance(record.exc_info[1], PedesError):
        return True
    if record.name.split(".", 1)[0] == "prefect":
        message = record.getMessage()
        return any(f"{name}(" in message or f"{name}:" in message for name in _user_error_names())
    return False


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


@contextmanager
def worker_output_to_log(label: str) -> Iterator[Path | None]:
    """Quiet mode (``PEDES_VERBOSE=0``, set by the CLI): while the block runs, file descriptors 1 and 2
    point at the run's log file (``pedes.log`` when a run folder is known, else
    ``<tmp>/pedes-logs/<label>-<pid>.log``), so worker processes started inside it (vLLM's engine core and
    workers print their banners, tqdm bars and warnings straight to the inherited descriptors) write
    there for their whole life. The descriptors are restored when the block ends. Outside quiet mode,
    or in a process that is not the CLI (``PEDES_VERBOSE`` unset), nothing changes. Yields the file
    (None when nothing was redirected)."""
    if os.environ.get(ENV_VERBOSE) != "0":
        yield None
        return
    target = RunFileHandler.path
    if target is None:
        folder = Path(tempfile.gettempdir()) / "pedes-logs"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{label}-{os.getpid()}.log"
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield target
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (*saved, fd):
            os.close(f)
