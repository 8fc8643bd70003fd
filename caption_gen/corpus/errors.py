"""Errors of the corpus store; all are :class:`~pedes_core.errors.PedesError` (printed without traceback)."""

from __future__ import annotations

from pedes_core.errors import PedesError


class CorpusError(PedesError):
    """A corpus operation failed because of the data given or found on disk. Exit status 1."""

    exit_code = 1


class NotACorpusError(CorpusError):
    """The path is not a corpus directory (no ``corpus.json`` and no ``shards/_done``). Exit status 2."""

    exit_code = 2


class CorpusLockedError(CorpusError):
    """Another live process holds the corpus' writer lock."""


class ShardSchemaError(CorpusError, ValueError):
    """Rows given to the writer do not match the schema (names the column) or repeat a row key."""


class CorruptCorpusFileError(CorpusError, ValueError):
    """A corpus file (done marker, manifest, shard) cannot be parsed."""


class CorpusWriteError(CorpusError):
    """A corpus file could not be written (disk full, permissions); names the path, leaves no partial file."""
