"""``pedes caption`` resume and faults in real processes (DESIGN §2: a rerun skips done work, never
duplicates rows, a killed run loses at most the shards in flight): images added in any sort position,
SIGKILL then a resume with another shard size, a resume with other kinds, a backend outage, generation
errors vs validation rejects, a FIFO among the images, disk full (injected ENOSPC), a corrupted done shard,
a second run refused by the corpus lock. After each sequence the corpus validates against its images and
holds every (image, kind, model) exactly once, as a caption row or a reject."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Injected faults, switched on by environment variables of the child process only.
DRIVER = textwrap.dedent("""
    import errno, os, sys, time
    from caption_gen.backends.base import GenerationResult
    from caption_gen.backends.stub import StubBackend
    _real = StubBackend.generate
    slow = float(os.environ.get("PEDES_TEST_SLOW", "0"))
    fail = set(filter(None, os.environ.get("PEDES_TEST_FAIL_IDS", "").split(",")))
    empty = set(filter(None, os.environ.get("PEDES_TEST_EMPTY_IDS", "").split(",")))
    def _generate(self, requests):
        if slow:
            time.sleep(slow)
        if fail & {r.metadata["image_id"] for r in requests}:
            raise RuntimeError("injected: backend down for this batch")
        out = _real(self, requests)
        return [GenerationResult(o.request_id, "", 0, "stop") if r.metadata["image_id"] in empty else o
                for o, r in zip(out, requests)]
    StubBackend.generate = _generate
    enospc = int(os.environ.get("PEDES_TEST_ENOSPC_AT", "0"))
    if enospc:
        import pyarrow.parquet as pq
        _write, calls = pq.write_table, [0]
        def _full(table, where, *a, **k):
            calls[0] += 1
            if calls[0] >= enospc:
                with open(where, "wb") as fh:
                    fh.write(b"PAR1 partial")  # a partial temp file, as a full disk leaves it
                raise OSError(errno.ENOSPC, "No space left on device")
            return _write(table, where, *a, **k)
        pq.write_table = _full
    from flows.cli import main
    main(sys.argv[1:])
""")


def pedes(tmp: Path, *args: str, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    driver = tmp / "pedes_driver.py"
    if not driver.exists():
        driver.write_text(DRIVER)
    return subprocess.run([sys.executable, str(driver), *args], capture_output=True, text=True, cwd=tmp,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, timeout=timeout)


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> list[Path]:
    """24 distinct synthetic pedestrian JPEGs."""
    from caption_gen.synth import render_dataset

    out = tmp_path_factory.mktemp("resume-pool")
    render_dataset(out, identities=8, images_per_identity=3, seed=5, size=(64, 32))
    return sorted((out / "imgs").rglob("*.jpg"))


def _fill(folder: Path, files: list[Path], prefix: str) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, f in enumerate(files):
        name = f"{prefix}{i:03d}.jpg"
        shutil.copy(f, folder / name)
        names.append(name)
    return names


def _image_id(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:20]


def _caption(tmp: Path, images: Path, out: Path, *extra: str, env: dict | None = None,
             timeout: float = 240) -> subprocess.CompletedProcess:
    return pedes(tmp, "caption", "--images", str(images), "--out", str(out), "--backend", "stub", "--no-progress",
                 "--batch-size", "2", *extra, env=env, timeout=timeout)


def _keys(out: Path) -> tuple[list[tuple], list[tuple]]:
    from caption_gen.corpus.reader import Corpus

    c = Corpus.open(out)
    caps = c.captions(columns=["image_path", "kind", "model"]).to_pylist()
    rej = c.rejects().to_pylist()
    return ([(r["image_path"], r["kind"], r["model"]) for r in caps],
            [(r["image_path"], r["kind"], r["model"], r["reason"]) for r in rej])


def _assert_complete(tmp: Path, out: Path, images: Path, kinds: list[str], model: str = "stub:default") -> None:
    """Valid against the images, every (image, kind, model) exactly once as a caption or a reject."""
    val = pedes(tmp, "corpus", "validate", str(out), "--images", str(images))
    assert val.returncode == 0, val.stdout + val.stderr
    caps, rej = _keys(out)
    seen = caps + [(p, k, m) for p, k, m, _ in rej if k is not None]
    whole = {p for p, k, _, _ in rej if k is None}
    assert len(seen) == len(set(seen)), "a key occurs twice"
    found = {str(p.relative_to(images)) for p in images.rglob("*.jpg")}
    assert set(seen) | {(p, k, model) for p in whole for k in kinds} >= {(p, k, model) for p in found for k in kinds}


def test_images_that_sort_before_done_ones_are_captioned_on_rerun(pool, tmp_path):
    images, out = tmp_path / "imgs", tmp_path / "corpus"
    _fill(images, pool[:8], "m_")
    first = _caption(tmp_path, images, out, "--shard-size", "3", "--kinds", "static")
    assert first.returncode == 0, first.stderr
    _fill(images, pool[8:14], "a_")  # sort before every done image
    again = _caption(tmp_path, images, out, "--shard-size", "3", "--kinds", "static")
    assert again.returncode == 0, again.stderr
    assert "2 shard(s) written, 3 already done" in again.stderr and "6 images" in again.stderr
    caps, _ = _keys(out)
    assert sorted(p for p, _, _ in caps) == sorted(p.name for p in images.iterdir())
    _assert_complete(tmp_path, out, images, ["static"])
    third = _caption(tmp_path, images, out, "--shard-size", "3", "--kinds", "static")
    assert third.returncode == 0 and "0 shard(s) written, 5 already done" in third.stderr


@pytest.mark.timeout(300)
def test_sigkill_then_resume_with_another_shard_size_loses_nothing(pool, tmp_path):
    images, out = tmp_path / "imgs", tmp_path / "corpus"
    _fill(images, pool[:20], "p_")
    driver = tmp_path / "pedes_driver.py"
    driver.write_text(DRIVER)
    args = [sys.executable, str(driver), "caption", "--images", str(images), "--out", str(out), "--backend", "stub",
            "--no-progress", "--batch-size", "2", "--shard-size", "3", "--kinds", "static,identity"]
    proc = subprocess.Popen(args, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO), "PEDES_TEST_SLOW": "0.3"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    done = out / "shards" / "_done"
    deadline = time.monotonic() + 200
    while proc.poll() is None and time.monotonic() < deadline and len(list(done.glob("*.json")) if done.is_dir() else []) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    n_done = len(list(done.glob("*.json")))
    assert 2 <= n_done < 7, n_done  # killed mid-run
    res = _caption(tmp_path, images, out, "--shard-size", "8", "--kinds", "static,identity")
    assert res.returncode == 0, res.stderr
    caps, rej = _keys(out)
    assert not rej and len(caps) == 40 and len(set(caps)) == 40  # 20 images × 2 kinds, each once
    _assert_complete(tmp_path, out, images, ["static", "identity"])


def test_resume_with_other_kinds_is_refused_in_one_line(pool, tmp_path):
    images, out = tmp_path / "imgs", tmp_path / "corpus"
    _fill(images, pool[:4], "k_")
    assert _caption(tmp_path, images, out, "--kinds", "static").returncode == 0
    res = _caption(tmp_path, images, out, "--kinds", "static,identity")
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "other settings" in lines[0] and "kinds ['static'] -> ['static', 'identity']" in lines[0]
    assert "Traceback" not in res.stderr


def test_validate_images_reports_images_without_captions(pool, tmp_path):
    images, out = tmp_path / "imgs", tmp_path / "corpus"
    _fill(images, pool[:4], "v_")
    assert _caption(tmp_path, images, out, "--kinds", "static,clothing").returncode == 0
    assert pedes(tmp_path, "corpus", "validate", str(out), "--images", str(images)).returncode == 0
    _fill(images, pool[4:6], "w_")  # never captioned
    val = pedes(tmp_path, "corpus", "validate", str(out), "--images", str(images))
    assert val.returncode == 1, val.stdout
    assert "[coverage]" in val.stdout and "2 image(s) found there lack a caption or reject for 4" in val.stdout
    assert "w_000.jpg (static|stub:default)" in val.stdout


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_backend_outage_fails_the_shard_and_the_rerun_completes(pool, tmp_path):
    from caption_gen.backends.factory import build_backend
    from caption_gen.backends.openai_server import make_server
    from caption_gen.backends.spec import ModelSpec

    images, out = tmp_path / "imgs", tmp_path / "corpus"
    _fill(images, pool[:5], "o_")
    port = _free_port()
    cfg = tmp_path / "run.yaml"
    cfg.write_text(json.dumps({"images": str(images), "out": str(out), "kinds": ["static"], "shard_size": 3,
                               "models": [{"name": "remote", "backend": "openai", "api_base": f"http://127.0.0.1:{port}/v1",
                                           "retries": 0, "timeout_s": 5}]}))
    down = pedes(tmp_path, "caption", "--config", str(cfg), "--no-progress")
    assert down.returncode == 1, down.stderr
    assert "shard 0 failed: 3 of 3 captions hit backend errors" in down.stderr and "connection error" in down.stderr
    assert "Traceback" not in down.stderr
    assert not list((out / "shards" / "_done").glob("*.json"))  # an outage is not finished work

    srv = make_server(build_backend(ModelSpec(backend="stub", name="remote")), port=port)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        up = pedes(tmp_path, "caption", "--config", str(cfg), "--no-progress")
    finally:
        srv.shutdown()
        srv.server_close()
    assert up.returncode == 0, up.stderr
    caps, rej = _keys(out)
    assert len(caps) == 5 and not rej
    _assert_complete(tmp_path, out, images, ["static"], model="remote")


def test_rerun_retries_generation_errors_but_not_validation_rejects(pool, tmp_path):
    images, out = tmp_path / "imgs", tmp_path / "corpus"
    _fill(images, pool[:6], "g_")
    broken, empty = _image_id(images / "g_001.jpg"), _image_id(images / "g_004.jpg")
    env = {"PEDES_TEST_FAIL_IDS": broken, "PEDES_TEST_EMPTY_IDS": empty}
    first = _caption(tmp_path, images, out, "--shard-size", "3", "--kinds", "static", "--batch-size", "1",
                     "--set", "retry.max_attempts=1", env=env)
    assert first.returncode == 0, first.stderr
    _, rej = _keys(out)
    assert sorted((p, r) for p, _, _, r in rej) == [("g_001.jpg", "generation:error"), ("g_004.jpg", "validation:empty")]
    again = _caption(tmp_path, images, out, "--shard-size", "3", "--kinds", "static", "--batch-size", "1",
                     "--set", "retry.max_attempts=1")
    assert again.returncode == 0, again.stderr
    assert "1 shard(s) written" in again.stderr  # shard 0 redone for its one failed job
    caps, rej = _keys(out)
    assert sorted(p for p, _, _ in caps) == [f"g_00{i}.jpg" for i in (0, 1, 2, 3, 5)]
    assert [(p, r) for p, _, _, r in rej] == [("g_004.jpg", "validation:empty")]  # final, not retried
    _assert_complete(tmp_path, out, images, ["static"])
    third = _caption(tmp_path, images, out, "--shard-size", "3", "--kinds", "static", "--batch-size", "1")
    assert third.returncode == 0 and "0 shard(s) written" in third.stderr


def test_fifo_with_an_image_name_is_a_reject_not_a_hang(pool, tmp_path):
    images, out = tmp_path / "imgs", tmp_path / "corpus"
    _fill(images, pool[:3], "f_")
    os.mkfifo(images / "f_pipe.jpg")
    res = _caption(tmp_path, images, out, "--kinds", "static", timeout=90)  # the old code blocks forever
    assert res.returncode == 0, res.stderr
    caps, rej = _keys(out)
    assert len(caps) == 3 and rej == [("f_pipe.jpg", None, None, "discovery:not_a_file")]
    _assert_complete(tmp_path, out, images, ["static"])


def test_disk_full_names_the_path_leaves_nothing_partial_and_rerun_completes(pool, tmp_path):
    images, out = tmp_path / "imgs", tmp_path / "corpus"
    _fill(images, pool[:6], "d_")
    full = _caption(tmp_path, images, out, "--shard-size", "2", "--kinds", "static",
                    env={"PEDES_TEST_ENOSPC_AT": "2"})  # the 2nd shard file hits a full disk
    assert full.returncode == 1, full.stderr
    lines = [ln for ln in full.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in full.stderr
    assert "No space left on device (ENOSPC)" in lines[0] and str(out / "shards" / "captions-00001.parquet") in lines[0]
    leftovers = [p.name for p in out.rglob("*") if p.is_file() and p.name.startswith(".") and "tmp" in p.name]
    assert leftovers == []
    assert sorted(p.name for p in (out / "shards" / "_done").iterdir()) == ["00000.json"]
    res = _caption(tmp_path, images, out, "--shard-size", "2", "--kinds", "static")
    assert res.returncode == 0 and "2 shard(s) written, 1 already done" in res.stderr, res.stderr
    _assert_complete(tmp_path, out, images, ["static"])


def test_corrupt_done_shard_names_the_shard_and_the_repair_command(pool, tmp_path):
    images, out = tmp_path / "imgs", tmp_path / "corpus"
    _fill(images, pool[:6], "c_")
    assert _caption(tmp_path, images, out, "--shard-size", "2", "--kinds", "static").returncode == 0
    shard = out / "shards" / "captions-00001.parquet"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])  # truncated
    _fill(images, pool[6:7], "z_")  # something to do on resume
    res = _caption(tmp_path, images, out, "--shard-size", "2", "--kinds", "static")
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    assert "done shard 1" in res.stderr and "shards/captions-00001.parquet" in res.stderr
    assert f"pedes corpus redo-shard {out} 1" in res.stderr
    fix = pedes(tmp_path, "corpus", "redo-shard", str(out), "1")
    assert fix.returncode == 0, fix.stderr
    again = _caption(tmp_path, images, out, "--shard-size", "2", "--kinds", "static")
    assert again.returncode == 0, again.stderr
    _assert_complete(tmp_path, out, images, ["static"])
    caps, _ = _keys(out)
    assert len(caps) == 7

    (out / "shards" / "_done" / "00000.json").write_text('{"rows": 2, "captions_')  # a torn marker
    torn = _caption(tmp_path, images, out, "--shard-size", "2", "--kinds", "static")
    assert torn.returncode == 1 and "Traceback" not in torn.stderr, torn.stderr
    assert "shard 0" in torn.stderr and f"pedes corpus redo-shard {out} 0" in torn.stderr
    assert pedes(tmp_path, "corpus", "redo-shard", str(out), "0").returncode == 0
    assert _caption(tmp_path, images, out, "--shard-size", "2", "--kinds", "static").returncode == 0
    _assert_complete(tmp_path, out, images, ["static"])
    assert len(_keys(out)[0]) == 7


def test_run_refused_by_the_lock_keeps_the_running_runs_resolved_config(pool, tmp_path):
    images, out = tmp_path / "imgs", tmp_path / "corpus"
    _fill(images, pool[:2], "l_")
    resolved = tmp_path / "corpus.config.resolved.yaml"
    driver = tmp_path / "pedes_driver.py"
    driver.write_text(DRIVER)
    running = subprocess.Popen(
        [sys.executable, str(driver), "caption", "--images", str(images), "--out", str(out), "--backend", "stub",
         "--no-progress", "--batch-size", "1", "--kinds", "static"], cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "PEDES_TEST_SLOW": "3"}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not resolved.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        before = resolved.read_text()
        refused = _caption(tmp_path, images, out, "--kinds", "static", "--set", "retry.max_attempts=1")
        assert refused.returncode == 1 and "is locked by pid" in refused.stderr, refused.stderr
        assert resolved.read_text() == before and "max_attempts: 1" not in before
    finally:
        os.killpg(running.pid, signal.SIGKILL)
        running.wait()
