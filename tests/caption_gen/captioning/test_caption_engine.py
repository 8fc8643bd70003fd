"""The captioning engine with the stub backend (acceptance paths) and injected faults (bad images,
failing batches, captions that fail validation and are regenerated)."""

from __future__ import annotations

import shutil

import pytest

from caption_gen.backends.base import GenerationResult
from caption_gen.backends.factory import build_backend
from caption_gen.backends.spec import ModelSpec
from caption_gen.captioning.config import CaptionRunConfig
from caption_gen.captioning.engine import CaptionEngine, caption_seed, run_captioning
from caption_gen.corpus.reader import Corpus
from caption_gen.corpus.validate import validate_corpus
from pedes_core.errors import ConfigError

KINDS = ["static", "dynamic", "identity", "clothing"]


def _cfg(images, out, **kw):
    base = dict(images=str(images), out=out, models=[ModelSpec(backend="stub", name="stub-a")], kinds=KINDS,
                shard_size=5, batch_size=8)
    base.update(kw)
    return CaptionRunConfig(**base)


def test_two_models_four_kinds_valid_corpus_and_idempotent_rerun(engine_images, tmp_path):
    models = [ModelSpec(backend="stub", name="stub-a"), ModelSpec(backend="stub", name="stub-b")]
    cfg = _cfg(engine_images, tmp_path / "c", models=models)
    first = run_captioning(cfg)
    assert (first.images, first.shards, first.accepted, first.rejected) == (12, 3, 12 * 4 * 2, 0)
    report = validate_corpus(tmp_path / "c")
    assert report.ok, report.problems
    df = Corpus.open(tmp_path / "c").to_pandas()
    assert set(df["kind"]) == set(KINDS) and set(df["model"]) == {"stub-a", "stub-b"}
    assert df.groupby(["image_id", "kind", "model"]).size().eq(1).all()
    dyn = df[df["kind"] == "dynamic"]
    assert dyn["template_id"].notna().all() and df[df["kind"] != "dynamic"]["template_id"].isna().all()
    # seed 002 §3.1: the TDE template is drawn per call, so two MLLMs get their own template for an image
    per_image = dyn.pivot(index="image_id", columns="model", values="template_id")
    assert (per_image["stub-a"] != per_image["stub-b"]).mean() > 0.5
    assert df["instruction_sha256"].str.len().eq(64).all() and df["instruction_id"].notna().all()
    assert (df["attempt"] == 1).all() and df["validation"].map(lambda v: v["passed"]).all()
    row = df.iloc[0]
    assert row["sampling"]["seed"] == caption_seed(0, row["image_id"], row["kind"], row["model"])
    files = {p: p.stat().st_mtime_ns for p in (tmp_path / "c" / "shards").rglob("*") if p.is_file()}
    second = run_captioning(cfg)
    assert (second.shards_written, second.shards_skipped, second.images) == (0, 3, 0)
    assert {p: p.stat().st_mtime_ns for p in files} == files
    # deterministic: a fresh run elsewhere draws the same templates and seeds and gets the same captions
    run_captioning(_cfg(engine_images, tmp_path / "d", models=models))
    other = Corpus.open(tmp_path / "d").to_pandas()
    cols = ["image_id", "kind", "model", "template_id", "caption"]
    key = ["image_id", "kind", "model"]
    assert df[cols].sort_values(key).reset_index(drop=True).equals(other[cols].sort_values(key).reset_index(drop=True))


def test_bad_and_duplicate_images_become_rejects(engine_images, tmp_path):
    imgs = tmp_path / "imgs"
    shutil.copytree(engine_images, imgs)
    good = sorted(imgs.rglob("*.jpg"))
    data = good[0].read_bytes()
    (imgs / "broken.jpg").write_bytes(data[: len(data) // 2])
    (imgs / "notes.jpg").write_text("not an image")
    shutil.copy(good[1], imgs / "zz_copy.jpg")
    summary = run_captioning(_cfg(imgs, tmp_path / "c", kinds=["static"]))
    assert summary.images == 15
    rej = Corpus.open(tmp_path / "c").rejects().to_pandas()
    by_path = dict(zip(rej["image_path"], rej["reason"], strict=True))
    assert by_path["broken.jpg"] == "decode:truncated"
    assert by_path["notes.jpg"] == "decode:not_an_image"
    assert by_path["zz_copy.jpg"] == "discovery:duplicate"
    assert len(Corpus.open(tmp_path / "c").to_pandas()) == 12
    assert validate_corpus(tmp_path / "c").ok


class FlakyBackend:
    """Injected faults around the stub: raise on chosen calls, or return bad text for chosen attempts."""

    def __init__(self, name, *, raise_on_calls=(), bad_attempts=(), error_attempts=()):
        self.name = name
        self.inner = build_backend(ModelSpec(backend="stub", name=name))
        self.raise_on_calls, self.bad_attempts, self.error_attempts = set(raise_on_calls), set(bad_attempts), set(error_attempts)
        self.calls = 0
        self.requests = []

    def generate(self, requests):
        self.calls += 1
        self.requests.extend(requests)
        if self.calls in self.raise_on_calls:
            raise RuntimeError(f"injected failure on call {self.calls}")
        out = []
        for req, res in zip(requests, self.inner.generate(requests), strict=True):
            attempt = int(req.request_id.rsplit("|a", 1)[1])
            if attempt in self.bad_attempts:
                res = GenerationResult(req.request_id, "I'm sorry, as an AI I cannot", 8, "stop")
            elif attempt in self.error_attempts:
                res = GenerationResult(req.request_id, "", 0, None, error="HTTP 503: overloaded")
            out.append(res)
        return out

    def close(self):
        pass


def test_failing_batch_is_retried_then_rejected_and_run_continues(engine_images, tmp_path):
    # batch_size 5 → 3 batches for shard 0 (5 images × 3 kinds): call 1 fails once and is retried;
    # calls 3 and 4 (second batch twice) fail → that batch's captions are rejected with the error text
    flaky = FlakyBackend("stub-a", raise_on_calls={1, 3, 4})
    cfg = _cfg(engine_images, tmp_path / "c", kinds=["static", "identity", "clothing"], batch_size=5,
               retry={"batch_retries": 1})
    summary = run_captioning(cfg, backends={"stub-a": flaky})
    assert summary.rejected == 5 and summary.accepted == 12 * 3 - 5
    rej = Corpus.open(tmp_path / "c").rejects().to_pandas()
    assert set(rej["stage"]) == {"generation"} and set(rej["reason"]) == {"generation:error"}
    assert rej["detail"].str.contains("injected failure on call 4").all()
    assert validate_corpus(tmp_path / "c").ok


def test_rejected_captions_regenerated_with_new_seed_and_temperature(engine_images, tmp_path):
    flaky = FlakyBackend("stub-a", bad_attempts={1})
    cfg = _cfg(engine_images, tmp_path / "c", kinds=["static"], sampling={"temperature": 0.5},
               retry={"max_attempts": 3, "temperature_bump": 0.2})
    summary = run_captioning(cfg, backends={"stub-a": flaky})
    assert summary.accepted == 12 and summary.rejected == 0
    df = Corpus.open(tmp_path / "c").to_pandas()
    assert (df["attempt"] == 2).all()
    for _, row in df.iterrows():
        assert row["sampling"]["seed"] == caption_seed(0, row["image_id"], "static", "stub-a") + 1
        assert row["sampling"]["temperature"] == pytest.approx(0.7)
    first_try = [r for r in flaky.requests if r.request_id.endswith("|a1")]
    assert {r.temperature for r in first_try} == {0.5}


def test_reject_after_max_attempts_keeps_all_reasons(engine_images, tmp_path):
    flaky = FlakyBackend("stub-a", bad_attempts={1}, error_attempts={2})
    cfg = _cfg(engine_images, tmp_path / "c", kinds=["identity"], retry={"max_attempts": 2, "max_generation_error_share": 1.0})
    run_captioning(cfg, backends={"stub-a": flaky})
    rej = Corpus.open(tmp_path / "c").rejects().to_pandas()
    assert len(rej) == 12 and set(rej["stage"]) == {"generation"} and (rej["attempt"] == 2).all()
    reasons = set(rej.iloc[0]["reasons"])
    assert {"validation:refusal", "generation:error"} <= reasons
    assert "HTTP 503" in rej.iloc[0]["detail"] and "attempt 1:" in rej.iloc[0]["detail"]


def test_config_errors_before_generation(engine_images, tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown caption kind"):
        _cfg(engine_images, tmp_path / "c", kinds=["static", "poetry"])
    with pytest.raises(ValidationError, match="model path does not exist"):
        _cfg(engine_images, tmp_path / "c", models=[{"backend": "vllm", "path": str(tmp_path / "missing")}])
    with pytest.raises(ValidationError, match="share the model name"):
        _cfg(engine_images, tmp_path / "c", models=[{"backend": "stub"}, {"backend": "stub"}])
    bad_bank = tmp_path / "bank.txt"
    bad_bank.write_text("A [person/woman/man] wearing [spaceship description].\n")
    engine = CaptionEngine(_cfg(engine_images, tmp_path / "c", templates=bad_bank))
    with pytest.raises(ConfigError, match="spaceship"):
        engine.prepare()
    assert not (tmp_path / "c").exists()
