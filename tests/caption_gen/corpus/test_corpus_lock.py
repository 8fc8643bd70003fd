"""Writer lock: a second writer gets a clear error, a lock left by a dead process is taken over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from caption_gen.corpus.errors import CorpusLockedError
from caption_gen.corpus.lock import LOCK_NAME
from caption_gen.corpus.writer import CorpusWriter


def test_second_writer_in_same_process_is_refused(tmp_path):
    with CorpusWriter(tmp_path / "c"):
        with pytest.raises(CorpusLockedError, match=rf"corpus .*c is locked by pid {os.getpid()}"):
            CorpusWriter(tmp_path / "c")
    CorpusWriter(tmp_path / "c").close()  # released on exit: a new writer gets it
    assert not (tmp_path / "c" / LOCK_NAME).exists()


def test_second_writer_in_other_process_is_refused(tmp_path):
    root = tmp_path / "c"
    code = textwrap.dedent(
        f"""
        import sys
        from caption_gen.corpus.writer import CorpusWriter
        w = CorpusWriter({str(root)!r})
        print("locked", flush=True)
        sys.stdin.readline()
        w.close()
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(CorpusLockedError, match=f"locked by pid {holder.pid}"):
            CorpusWriter(root)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    CorpusWriter(root).close()


def test_stale_lock_of_dead_pid_is_taken_over(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (root / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename}))
    with CorpusWriter(root):
        assert json.loads((root / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_lock_can_be_disabled(tmp_path):
    with CorpusWriter(tmp_path / "c"):
        CorpusWriter(tmp_path / "c", lock=False).close()
