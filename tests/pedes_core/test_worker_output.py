"""Quiet mode sends what worker processes print (vLLM's engine banners) to the log file, not the terminal."""

from __future__ import annotations

import subprocess
import sys

from pedes_core.logs import ENV_VERBOSE, worker_output_to_log

CHILD = [sys.executable, "-c", "import sys; print('child-out'); print('child-err', file=sys.stderr)"]


def test_quiet_mode_files_child_output(capfd, monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VERBOSE, "0")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with worker_output_to_log("test") as target:
        subprocess.run(CHILD, check=True)
    print("parent-after")
    out, err = capfd.readouterr()
    assert "child-out" not in out and "child-err" not in err and "parent-after" in out
    assert target is not None and {"child-out", "child-err"} <= set(target.read_text().split())


def test_verbose_or_library_use_leaves_the_terminal_alone(capfd, monkeypatch):
    for value in ("1", None):
        if value is None:
            monkeypatch.delenv(ENV_VERBOSE, raising=False)
        else:
            monkeypatch.setenv(ENV_VERBOSE, value)
        with worker_output_to_log("test") as target:
            subprocess.run(CHILD, check=True)
        out, err = capfd.readouterr()
        assert target is None and "child-out" in out and "child-err" in err
