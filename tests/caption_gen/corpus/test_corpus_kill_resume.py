"""A writer killed with SIGKILL mid-run and run again ends with exactly the expected rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from caption_gen.corpus import manifest as mf
from caption_gen.corpus.lock import LOCK_NAME
from caption_gen.corpus.validate import validate_corpus

WORKER = Path(__file__).with_name("corpus_kill_worker.py")
SHARDS, IMAGES, ROWS_PER_IMAGE = 8, 25, 4
WAIT_LIMIT_S = 120
POLL_S = 0.02


def start(root: Path, sleep_s: float, *stall: int) -> subprocess.Popen:
    args = [sys.executable, str(WORKER), str(root), str(SHARDS), str(IMAGES), str(sleep_s), *map(str, stall)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(cond, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_S
    while not cond():
        if proc.poll() is not None:
            raise AssertionError(f"worker exited early ({proc.returncode}): {proc.stderr.read().decode()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("worker made no progress")
        time.sleep(POLL_S)


def markers(root: Path) -> list[Path]:
    done = root / mf.DONE_DIR
    return sorted(p for p in done.glob("*.json")) if done.is_dir() else []


@pytest.mark.parametrize("moment", ["after_third_marker", "between_rename_and_marker"])
def test_sigkill_then_resume(tmp_path, moment):
    root = tmp_path / "c"
    if moment == "after_third_marker":
        proc = start(root, 0.3)
        wait_for(lambda: len(markers(root)) >= 3, proc)
    else:  # injected stall: shard 3's files are renamed into place, its marker not yet written
        proc = start(root, 0.0, 3)
        wait_for(lambda: (root / mf.captions_name(3)).exists() and (root / mf.rejects_name(3)).exists(), proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    done_before = len(markers(root))
    assert 3 <= done_before < SHARDS and not (root / mf.MANIFEST_NAME).exists()
    assert (root / LOCK_NAME).exists()  # left behind by the dead writer: must be taken over
    if moment == "between_rename_and_marker":
        assert done_before == 3 and (root / mf.captions_name(3)).exists()  # a partial shard exists

    rerun = start(root, 0.0)
    out, err = rerun.communicate(timeout=WAIT_LIMIT_S)
    assert rerun.returncode == 0, err.decode()

    report = validate_corpus(root)
    assert report.ok, [str(p) for p in report.problems]
    df = pd.read_parquet(root / "shards")
    assert len(df) == SHARDS * IMAGES * ROWS_PER_IMAGE
    assert not df.duplicated(["image_id", "kind", "model", "template_id", "style_id"]).any()
    expected_ids = {f"{s:04d}-{i:04d}" for s in range(SHARDS) for i in range(IMAGES)}
    assert set(df["image_id"]) == expected_ids
    assert len(pd.read_parquet(root / "rejects")) == SHARDS
    leftovers = [p.name for d in ("shards", "rejects", "shards/_done") for p in (root / d).iterdir()
                 if p.name.startswith(".") or not (p.suffix in (".parquet", ".json") or p.is_dir())]
    assert leftovers == []
    assert not (root / LOCK_NAME).exists()
