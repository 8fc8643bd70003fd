"""The trained captioner through the real vLLM CPU engine and the captioning pipeline: accepted rows of
every kind, a caption regenerated then accepted, rejects with named reasons, and identity/clothing
texts that pass the leakage checks."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.vllm

KINDS = ["static", "dynamic", "identity", "clothing"]


def _run(tmp_path, name, heldout, backend_pair, **cfg_kw):
    from caption_gen.captioning.config import CaptionRunConfig
    from caption_gen.captioning.engine import run_captioning
    from caption_gen.corpus.reader import Corpus

    spec, backend = backend_pair
    cfg = CaptionRunConfig(images=str(heldout / "imgs"), out=tmp_path / name, models=[spec], progress=False, **cfg_kw)
    summary = run_captioning(cfg, backends={spec.label: backend})
    corpus = Corpus.open(tmp_path / name)
    rows = corpus.captions().to_pandas()
    rej = corpus.rejects().to_pandas()
    return summary, rows, rej


def test_accepted_rows_of_every_kind_pass_leakage_checks(tmp_path, heldout_synth, captioner_backend):
    from caption_gen.corpus.validate import validate_corpus
    from caption_gen.validation.rules import leakage_terms

    summary, rows, rej = _run(tmp_path, "corpus", heldout_synth, captioner_backend, kinds=KINDS)
    assert summary.images == 12
    assert len(rows) + len(rej) == 12 * 4
    for kind in KINDS:
        got = rows[rows["kind"] == kind]
        assert len(got) >= 6, (kind, list(rej[rej["kind"] == kind]["reasons"]))
        assert got["validation"].map(lambda v: v["passed"]).all()
    assert set(rows[rows["kind"] == "dynamic"]["template_id"].dropna()) and rows["caption"].str.len().gt(0).all()
    for kind in ("identity", "clothing"):
        texts = rows[rows["kind"] == kind]["caption"]
        assert all(leakage_terms(t, kind) == [] for t in texts), list(texts)
    assert (rows["finish_reason"] == "stop").all()  # the model ends its answers (EOS), not the token limit
    assert validate_corpus(tmp_path / "corpus").ok


def test_regenerated_then_accepted_and_rejects_with_reasons(tmp_path, heldout_synth, captioner_backend):
    # static answers come in phrasings of different lengths; a tight word limit rejects the longer ones, so
    # a resampled attempt (new seed, higher temperature) can pass. Clothing answers can never reach 40 words.
    policy = {"kinds": {"static": {"max_words": 24}, "clothing": {"min_words": 40}}}
    summary, rows, rej = _run(tmp_path, "retry", heldout_synth, captioner_backend, kinds=["static", "clothing"],
                              validation=policy, retry={"max_attempts": 4, "temperature_bump": 0.3},
                              sampling={"temperature": 1.0})
    static = rows[rows["kind"] == "static"]
    assert (static["attempt"] > 1).any(), "no caption was regenerated and then accepted"
    assert (static["caption"].str.split().str.len() <= 24).all()
    clothing_rej = rej[rej["kind"] == "clothing"]
    assert len(clothing_rej) == 12 and not (rows["kind"] == "clothing").any()
    assert clothing_rej["reasons"].map(lambda rs: "validation:too_short" in rs).all()
    assert (clothing_rej["attempt"] == 4).all() and clothing_rej["detail"].str.contains("attempt 4:").all()
    assert clothing_rej["caption"].str.len().gt(0).all()
