"""SIGKILL the ``pedes flow run build-corpus`` process while shards are in flight, rerun: the corpus validates,
each (image, kind, model) appears exactly once, no partial files are left, and the rerun only did the
shards that were not done."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from caption_gen.corpus.reader import Corpus
from caption_gen.corpus.validate import validate_corpus
from flows.registry import run_flow

REPO = Path(__file__).resolve().parents[2]

# The injected fault: a slow backend (0.4 s per batch), so the kill lands while shards are in flight.
DRIVER = textwrap.dedent("""
    import sys, time
    from caption_gen.backends.stub import StubBackend
    _real = StubBackend.generate
    def _slow(self, requests):
        time.sleep(0.4)
        return _real(self, requests)
    StubBackend.generate = _slow
    from flows.cli import main
    main(["flow", "run", "build-corpus", "--config", sys.argv[1]])
""")


def _done(out: Path) -> set[int]:
    d = out / "shards" / "_done"
    return {int(p.stem) for p in d.glob("*.json")} if d.is_dir() else set()


@pytest.mark.timeout(420)
def test_sigkill_mid_run_then_rerun_does_only_the_missing_shards(tmp_path, synth_small, stub_config_writer,
                                                                  prefect_harness):
    out = tmp_path / "corpus"
    cfg = stub_config_writer(tmp_path / "bc.yaml", synth_small / "imgs", out, kinds=["static", "identity"])
    n_images = len(list((synth_small / "imgs").rglob("*.jpg")))
    n_shards = -(-n_images // 6)
    driver = tmp_path / "slow_driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PYTHONPATH": str(REPO),
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}
    env.pop("PREFECT_API_URL", None)
    log = (tmp_path / "run1.log").open("wb")
    proc = subprocess.Popen([sys.executable, str(driver), str(cfg)], cwd=tmp_path, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while len(_done(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, (tmp_path / "run1.log").read_text()[-3000:]
        assert 2 <= len(_done(out)) < n_shards
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the flow process and its ephemeral Prefect server
        proc.wait(60)
        log.close()
    assert proc.returncode == -signal.SIGKILL
    done_after_kill = _done(out)
    assert not (out / "corpus.json").exists()  # killed before finalize

    summary = run_flow("build-corpus", cfg)  # the rerun (the kernel dropped the dead run's flock)
    assert summary["shard_indices_run"] == sorted(set(range(n_shards)) - done_after_kill)
    assert summary["shards_skipped"] == len(done_after_kill)
    report = validate_corpus(out)
    assert report.ok, [str(p) for p in report.problems]
    keys = Corpus.open(out).captions(columns=["image_id", "kind", "model"]).to_pylist()
    triples = [(k["image_id"], k["kind"], k["model"]) for k in keys]
    assert len(triples) == len(set(triples)) == 2 * n_images
    leftovers = [p for p in out.rglob("*") if p.is_file() and ".tmp-" in p.name]
    assert leftovers == []
    files = {p.name for p in (out / "shards").glob("*.parquet")}
    assert files == {f"captions-{i:05d}.parquet" for i in range(n_shards)}
    assert json.loads((out / "corpus.json").read_text())["totals"]["rows"] == 2 * n_images
