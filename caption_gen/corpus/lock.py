"""Exclusive writer lock on a corpus directory: ``<root>/.pedes-writer.lock``.

The lock is an ``fcntl.flock`` on the lock file, so the kernel drops it when the holder dies (even by
SIGKILL): a lock file left by a dead process is simply taken over. The file holds the holder's pid
and host, used in the error message ("corpus X is locked by pid N"). Where ``flock`` is not
supported by the filesystem, the pid recorded in the file is checked for liveness instead
(same host only; a lock from another host is treated as held).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from pathlib import Path

from caption_gen.corpus.errors import CorpusLockedError

LOCK_NAME = ".pedes-writer.lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_holder(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 4096)
        return json.loads(raw.decode() or "{}")
    except (OSError, ValueError):
        return {}


class CorpusLock:
    """Hold with ``acquire()`` / ``release()`` or as a context manager."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.path = self.root / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise CorpusLockedError(self._message(holder)) from None
            # flock unsupported here: fall back to the recorded pid
            pid = holder.get("pid")
            same_host = holder.get("host") == socket.gethostname()
            if pid and (not same_host or _pid_alive(int(pid))) and int(pid) != os.getpid():
                os.close(fd)
                raise CorpusLockedError(self._message(holder)) from None
        try:
            same_file = os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            same_file = False
        if not same_file:  # the holder released (and unlinked) between our open and flock: retry
            os.close(fd)
            return self.acquire()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
        self._fd = fd

    def _message(self, holder: dict) -> str:
        pid = holder.get("pid", "?")
        host = holder.get("host")
        where = f" on {host}" if host and host != socket.gethostname() else ""
        return f"corpus {self.root} is locked by pid {pid}{where} (another writer is running on it)"

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            self.path.unlink(missing_ok=True)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> CorpusLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
