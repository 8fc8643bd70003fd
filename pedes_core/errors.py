"""User-facing errors: each carries the exit status the CLI returns and a message that names the
file/field at fault. The CLI prints ``str(error)`` (no traceback) and exits with ``exit_code``.
"""

from __future__ import annotations


class PedesError(Exception):
    """Base class of errors caused by the user's input, not by a bug. Exit status 1."""

    exit_code: int = 1


class ConfigError(PedesError):
    """A config file or override is wrong (unknown key, wrong type, missing path). Exit status 2."""

    exit_code = 2


class InputError(PedesError):
    """An input file (annotations, image list, template bank) is malformed or missing. Exit status 2."""

    exit_code = 2


class CorpusInvalidError(PedesError):
    """``pedes corpus validate`` found problems. Exit status 1."""

    exit_code = 1
