"""``build-corpus`` under the Prefect test harness with the stub backend on synthetic pedestrians: the corpus
validates, the summary artifact has the counts, reruns do nothing, a folder that gained images gets only
the new ones captioned, injected backend faults end as rejects with reasons and visible retry counts, and
a second concurrent run on the same corpus is refused by the writer lock."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from pathlib import Path

import pytest
import yaml

from caption_gen.corpus.reader import Corpus
from caption_gen.corpus.schema import ROW_KEY, image_id_from_sha256
from caption_gen.corpus.validate import validate_corpus
from flows.registry import get_flow, run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _images(synth_small: Path) -> list[Path]:
    return sorted((synth_small / "imgs").rglob("*.jpg"))


def _image_id(path: Path) -> str:
    return image_id_from_sha256(hashlib.sha256(path.read_bytes()).hexdigest())


def _keys(root: Path) -> list[tuple]:
    t = Corpus.open(root).captions(columns=list(ROW_KEY))
    return list(zip(*(t.column(k).to_pylist() for k in ROW_KEY), strict=True))


def _assert_valid(root: Path) -> None:
    report = validate_corpus(root)
    assert report.ok, [str(p) for p in report.problems]
    keys = _keys(root)
    assert len(keys) == len(set(keys))


def test_build_corpus_runs_validates_and_rerun_does_nothing(tmp_path, synth_small, stub_config_writer,
                                                            artifact_reader):
    out = tmp_path / "corpus"
    cfg = stub_config_writer(tmp_path / "bc.yaml", synth_small / "imgs", out)
    n = len(_images(synth_small))
    s = run_flow("build-corpus", cfg)
    _assert_valid(out)
    assert s["images"] == n and s["shards_total"] == -(-n // 6) == s["shards_run"] and s["shards_skipped"] == 0
    assert s["rows"] == s["accepted"] == 2 * n and s["rejects"] == 0 and s["acceptance_rate"] == 1.0
    assert s["acceptance"] == {"static|stub-a": {"rows": n, "accepted": n}, "identity|stub-a": {"rows": n, "accepted": n}}
    assert s["images_per_s"] > 0 and s["backend_calls"] > 0 and s["task_retries"] == 0
    md = artifact_reader("build-corpus-summary")
    assert f"images: {n} in {s['shards_total']} shards" in md and "images/s" in md
    assert "| static | stub-a |" in md and "| identity | stub-a |" in md
    assert (Path(s["manifest"])).is_file() and Path(s["card"]).is_file()
    fp = Corpus.open(out).manifest["fingerprint"]  # the same run fingerprint pedes caption records
    assert fp["kinds"] == ["static", "identity"] and fp["models"] == ["stub-a"] and fp["shard_size"] == 6
    assert set(fp["banks"]) >= {"instructions"} and all(fp["banks"].values())
    markers = {p.name: p.stat().st_mtime_ns for p in (out / "shards" / "_done").iterdir()}

    again = run_flow("build-corpus", cfg)
    assert again["shards_run"] == 0 and again["shards_skipped"] == s["shards_total"] and again["rows"] == 2 * n
    assert {p.name: p.stat().st_mtime_ns for p in (out / "shards" / "_done").iterdir()} == markers
    _assert_valid(out)


def test_folder_that_gained_images_captions_only_the_new_ones(tmp_path, synth_small, stub_config_writer):
    src = synth_small / "imgs"
    folders = sorted(p.name for p in src.iterdir() if p.is_dir())
    first, later = folders[::2], folders[1::2]  # the new folders sort in between the old ones
    images = tmp_path / "imgs"
    for name in first:
        shutil.copytree(src / name, images / name)
    out = tmp_path / "corpus"
    cfg = stub_config_writer(tmp_path / "bc.yaml", images, out, kinds=["static"])
    s1 = run_flow("build-corpus", cfg)
    old = {str(p.relative_to(images)) for p in images.rglob("*.jpg")}
    assert s1["rows"] == len(old)
    done_before = set(Corpus.open(out).markers)

    for name in later:
        shutil.copytree(src / name, images / name)
    shutil.copy(src / first[0] / sorted(p.name for p in (src / first[0]).iterdir())[0],
                images / later[0] / "copy_of_old.jpg")  # new path, content already in the corpus
    s2 = run_flow("build-corpus", cfg)
    new = {str(p.relative_to(images)) for p in images.rglob("*.jpg")} - old
    _assert_valid(out)
    corpus = Corpus.open(out)
    ran = set(corpus.markers) - done_before
    assert sorted(ran) == s2["shard_indices_run"] and s2["shards_skipped"] == len(done_before)
    caps = corpus.captions(columns=["image_path", "kind"])
    paths = caps.column("image_path").to_pylist()
    assert sorted(paths) == sorted((old | new) - {f"{later[0]}/copy_of_old.jpg"})  # each image once
    import pyarrow.parquet as pq

    run2 = [p for i in ran if (f := corpus.markers[i].get("captions_file"))
            for p in pq.read_table(out / f, columns=["image_path"]).column("image_path").to_pylist()]
    assert set(run2) == new - {f"{later[0]}/copy_of_old.jpg"} and len(run2) == len(set(run2))
    rej = corpus.rejects()
    assert rej.column("image_path").to_pylist() == [f"{later[0]}/copy_of_old.jpg"]
    assert rej.column("reason").to_pylist() == ["discovery:duplicate"]


def test_injected_backend_faults_end_as_rejects_with_retry_counts(tmp_path, synth_small, stub_config_writer,
                                                                  monkeypatch, artifact_reader):
    """Exception on some batches, a hang past the batch deadline, empty outputs, a shard task that fails
    once (retried by Prefect) and one that always fails (listed, left not done, redone by the next run)."""
    from caption_gen.backends.base import GenerationResult
    from caption_gen.backends.stub import StubBackend
    from caption_gen.captioning.engine import CaptionEngine

    imgs = _images(synth_small)
    boom, hang, empty = _image_id(imgs[0]), _image_id(imgs[7]), _image_id(imgs[13])
    real_generate = StubBackend.generate

    def faulty_generate(self, requests):
        ids = {r.metadata["image_id"] for r in requests}
        if boom in ids:
            raise RuntimeError("injected: CUDA error on this batch")
        if hang in ids:
            time.sleep(2.0)  # past batch_timeout_s
        results = real_generate(self, requests)
        return [GenerationResult(r.request_id, "", 0, "stop") if rq.metadata["image_id"] == empty else r
                for r, rq in zip(results, requests, strict=True)]

    real_shard = CaptionEngine.caption_shard
    calls: dict[int, int] = {}

    def flaky_shard(self, shard):
        calls[shard.index] = calls.get(shard.index, 0) + 1
        if shard.index == 3 and calls[3] == 1:
            raise OSError("injected: worker lost its model once")
        if shard.index == 5:
            raise OSError("injected: shard 5 always fails")
        return real_shard(self, shard)

    monkeypatch.setattr(StubBackend, "generate", faulty_generate)
    monkeypatch.setattr(CaptionEngine, "caption_shard", flaky_shard)
    out = tmp_path / "corpus"
    cfg = stub_config_writer(tmp_path / "bc.yaml", synth_small / "imgs", out, kinds=["static"],
                             retry={"max_attempts": 2, "batch_retries": 1, "max_generation_error_share": 1.0})
    data = yaml.safe_load(cfg.read_text())
    data["task"]["batch_timeout_s"] = 0.5
    cfg.write_text(yaml.safe_dump(data))

    from caption_gen.corpus.errors import CorpusError

    with pytest.raises(CorpusError, match=r"shard\(s\) \[5\] failed and are not done .*shard 5 always fails"):
        run_flow("build-corpus", cfg)  # unfinished work fails the flow run, after the summary is written
    s = json.loads((tmp_path / "corpus.flow" / "summary.json").read_text())
    assert s["failed_shards"] == [5] and "shard 5 always fails" in s["failures"]["5"]
    assert s["task_retries"] >= 2  # shard 3 once, shard 5 once (task.retries: 1)
    assert s["backend_timeouts"] == 2 and s["backend_retries"] >= 4 and s["empty_outputs"] == 2
    reasons = s["rejects_by_reason"]
    assert reasons["generation:error"] == 2 * 4  # the failing batch and the hanging batch, 4 images each
    assert reasons.get("validation:empty") == 1
    md = artifact_reader("build-corpus-summary")
    assert "shard-task retries" in md and "generation:error" in md and "failed shards: [5]" in md
    _assert_valid(out)
    corpus = Corpus.open(out)
    assert 5 not in corpus.markers
    rej = corpus.rejects().to_pylist()
    details = {r["image_id"]: r["detail"] for r in rej}
    assert "injected: CUDA error" in details[boom] and "did not answer" in details[hang]
    assert next(r for r in rej if r["image_id"] == empty)["reasons"] == ["validation:empty"]

    monkeypatch.setattr(CaptionEngine, "caption_shard", real_shard)
    monkeypatch.setattr(StubBackend, "generate", real_generate)
    error_shards = {i for i, m in corpus.markers.items() if m["rejects_by_reason"].get("generation:error")}
    redo = run_flow("build-corpus", cfg)
    # shard 5 (never done) runs; the done shards holding generation errors are redone for those jobs only
    assert redo["shard_indices_run"] == sorted({5} | error_shards) and redo["failed_shards"] == []
    assert redo["redone_shards"] == sorted(error_shards) and len(error_shards) == 2
    _assert_valid(out)
    corpus = Corpus.open(out)
    captioned = corpus.captions(columns=["image_id"]).column("image_id").to_pylist()
    assert len(captioned) == len(set(captioned))
    assert set(captioned) == {_image_id(p) for p in imgs} - {empty}  # the validation reject is final
    assert corpus.rejects().column("reason").to_pylist() == ["validation:empty"]


def test_second_concurrent_run_is_refused_by_the_lock(tmp_path, synth_small, stub_config_writer, monkeypatch,
                                                      capsys):
    from caption_gen.backends.stub import StubBackend
    from caption_gen.corpus.errors import CorpusLockedError
    from flows.cli import main

    real_generate = StubBackend.generate
    release = threading.Event()

    def held_generate(self, requests):  # the first run stays in flight until the checks are done
        release.wait(120)
        return real_generate(self, requests)

    monkeypatch.setattr(StubBackend, "generate", held_generate)
    out = tmp_path / "corpus"
    cfg = stub_config_writer(tmp_path / "bc.yaml", synth_small / "imgs", out, kinds=["static"])
    first: dict = {}
    runner = threading.Thread(target=lambda: first.setdefault("summary", run_flow("build-corpus", cfg)))
    runner.start()
    try:
        lock = out / ".pedes-writer.lock"
        deadline = time.monotonic() + 120
        while not (lock.is_file() and lock.read_text()) and runner.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runner.is_alive(), "first run ended before the second could start"
        with pytest.raises(CorpusLockedError, match=r"is locked by pid \d+ \(another writer is running on it\)"):
            run_flow("build-corpus", cfg)
        capsys.readouterr()  # only what the CLI prints below is judged (the in-process run above may log)
        with pytest.raises(SystemExit) as exit_info:  # the CLI refuses before Prefect starts, no traceback
            main(["flow", "run", "build-corpus", "--config", str(cfg)])
        assert exit_info.value.code == 1
        err = capsys.readouterr().err
        assert "is locked by pid" in err and "Traceback" not in err
        with pytest.raises(CorpusLockedError):
            get_flow("build-corpus").preflight(get_flow("build-corpus").load_config(cfg))
    finally:
        release.set()
        runner.join(300)
    n = len(_images(synth_small))
    assert first["summary"]["rows"] == n and first["summary"]["failed_shards"] == []
    _assert_valid(out)


def test_shard_that_keeps_failing_is_rejected_with_on_shard_failure_reject(tmp_path, synth_small,
                                                                            stub_config_writer, monkeypatch):
    from caption_gen.captioning.engine import CaptionEngine

    real_shard = CaptionEngine.caption_shard

    def broken_shard(self, shard):
        if shard.index == 1:
            raise OSError("injected: shard 1 always fails")
        return real_shard(self, shard)

    monkeypatch.setattr(CaptionEngine, "caption_shard", broken_shard)
    out = tmp_path / "corpus"
    cfg = stub_config_writer(tmp_path / "bc.yaml", synth_small / "imgs", out, kinds=["static"])
    data = yaml.safe_load(cfg.read_text())
    data["task"].update(retries=0, on_shard_failure="reject")
    cfg.write_text(yaml.safe_dump(data))
    s = run_flow("build-corpus", cfg)
    assert s["failed_shards"] == [1] and s["rejects_by_reason"] == {"flow:shard_failed": 6}
    _assert_valid(out)
    rej = Corpus.open(out).rejects().to_pylist()
    assert {r["image_path"] for r in rej} == {str(p.relative_to(synth_small / "imgs")) for p in _images(synth_small)[6:12]}
    assert all("shard 1 always fails" in r["detail"] for r in rej)
    assert run_flow("build-corpus", cfg)["shards_run"] == 0  # the rejected shard is done
