"""Telling the log setup where a run's folder is (docs/logging.md).

Library code does not configure logging; it announces the folder it writes into with
:func:`announce_run_dir` (a log record carrying :data:`RUN_DIR_ATTR`). The ``pedes`` CLI's file handler
then writes the run's log — library INFO/WARNING records included — to ``<folder>/pedes.log``. Outside the
CLI the record is an ordinary debug message.
"""

from __future__ import annotations

import logging
from pathlib import Path

RUN_DIR_ATTR = "pedes_run_dir"
LOG_NAME = "pedes.log"
_LOGGER = logging.getLogger("pedes.run")


def announce_run_dir(path: str | Path) -> None:
    """Announce that this process now writes its outputs into ``path`` (its log goes to ``path/pedes.log``)."""
    if _LOGGER.level == logging.NOTSET:
        _LOGGER.setLevel(logging.DEBUG)  # reach the handlers whatever the root level is
    _LOGGER.debug("run folder: %s", path, extra={RUN_DIR_ATTR: str(path)})
