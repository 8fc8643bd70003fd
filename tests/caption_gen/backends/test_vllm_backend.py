"""The ``vllm`` backend on the real CPU engine: a tiny random LLaVA, its own trained tokenizer and chat
template, real synthetic pedestrian images. Random weights → gibberish → validation must reject it
with named reasons, and the rejects must be written to the corpus."""

from __future__ import annotations

import pytest

from caption_gen.backends.base import GenerationRequest

pytestmark = pytest.mark.vllm

PROMPT = [{"role": "system", "content": "Be precise."},
          {"role": "user", "content": "Describe the clothing, shoes, hairstyle, gender and belongings."}]


def test_batched_generation_aligned_seeded_and_text_only(vllm_backend, pil_images):
    reqs = [GenerationRequest(f"r{i}", PROMPT, image=im, temperature=0.8, max_tokens=24, seed=100 + i)
            for i, im in enumerate(pil_images[:6])]
    reqs.append(GenerationRequest("text-only", [{"role": "user", "content": "hello"}], max_tokens=6, seed=1))
    out = vllm_backend.generate(reqs)
    assert [r.request_id for r in out] == [r.request_id for r in reqs]
    for r in out:
        assert r.error is None and r.finish_reason in ("stop", "length")
        assert 0 < r.num_tokens <= 24
    assert out[-1].num_tokens <= 6
    again = vllm_backend.generate(reqs[:3])  # same seeds, other batch → same text (same machine/version)
    assert [r.text for r in again] == [r.text for r in out[:3]]
    other = vllm_backend.generate([GenerationRequest("x", PROMPT, image=pil_images[0], temperature=0.8,
                                                     max_tokens=24, seed=999)])
    assert other[0].text != out[0].text


def test_engine_end_to_end_rejects_gibberish(vllm_backend, vllm_spec, synth_images, tmp_path):
    from caption_gen.captioning.config import CaptionRunConfig
    from caption_gen.captioning.engine import run_captioning
    from caption_gen.corpus.reader import Corpus
    from caption_gen.corpus.validate import validate_corpus

    cfg = CaptionRunConfig(images=str(synth_images), out=tmp_path / "corpus", models=[vllm_spec],
                           kinds=["static", "identity"], shard_size=4, batch_size=16,
                           sampling={"max_tokens": 32}, retry={"max_attempts": 2})
    summary = run_captioning(cfg, backends={vllm_spec.label: vllm_backend})
    assert summary.images == 9 and summary.shards_written == 3
    assert summary.accepted + summary.rejected == 9 * 2
    assert summary.rejected >= 16  # random weights: (almost) everything is rejected
    rej = Corpus.open(tmp_path / "corpus").rejects().to_pandas()
    assert set(rej["stage"]) == {"validation"} and set(rej["model"]) == {"tiny-llava-vllm"}
    assert (rej["attempt"] == 2).all()
    assert rej["caption"].str.len().gt(0).all()
    all_reasons = {r for rs in rej["reasons"] for r in rs}
    # gibberish is junk/incomplete and lacks the person attributes; the named reasons say so
    assert all_reasons & {"validation:junk", "validation:incomplete_sentence", "validation:low_coverage"}
    assert all(r.startswith("validation:") for r in all_reasons)
    assert rej["detail"].str.contains("attempt 1:").all() and rej["detail"].str.contains("attempt 2:").all()
    assert validate_corpus(tmp_path / "corpus").ok


# --- CPU defaults (issue 18): pure functions, no engine start --------------------------------------------


def _spec(tmp_path, **kw):
    import json

    from caption_gen.backends.spec import ModelSpec

    (tmp_path / "config.json").write_text(json.dumps({"text_config": {
        "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "hidden_size": 256}}))
    return ModelSpec(backend="vllm", path=tmp_path, **kw)


GIB = 1024**3


def test_cpu_defaults_size_kv_cache_from_a_budget_not_a_share_of_ram(tmp_path):
    from caption_gen.backends.vllm_backend import CPU_KV_CACHE_GIB, cpu_engine_kwargs, kv_bytes_per_token

    spec = _spec(tmp_path)
    assert kv_bytes_per_token(str(tmp_path), "float32") == 2 * 4 * 2 * 64 * 4
    kw = cpu_engine_kwargs(spec, available=64 * GIB)
    assert kw == {"dtype": "float32", "enforce_eager": True, "kv_cache_memory_bytes": int(CPU_KV_CACHE_GIB * GIB)}
    assert "gpu_memory_utilization" not in kw
    assert cpu_engine_kwargs(spec, available=2 * GIB)["kv_cache_memory_bytes"] == GIB // 2  # a quarter
    assert cpu_engine_kwargs(_spec(tmp_path, kv_cache_gib=0.25), available=8 * GIB)["kv_cache_memory_bytes"] == GIB // 4


def test_cpu_defaults_keep_explicit_settings(tmp_path):
    from caption_gen.backends.vllm_backend import cpu_engine_kwargs

    kw = cpu_engine_kwargs(_spec(tmp_path, gpu_memory_utilization=0.1, dtype="bfloat16", enforce_eager=False),
                           available=8 * GIB)
    assert kw == {"dtype": "bfloat16", "enforce_eager": False, "gpu_memory_utilization": 0.1}
    kw = cpu_engine_kwargs(_spec(tmp_path, engine_args={"kv_cache_memory_bytes": 123}), available=8 * GIB)
    assert "kv_cache_memory_bytes" not in kw  # engine_args pass through unchanged


def test_cpu_too_little_memory_is_one_line_naming_the_setting(tmp_path):
    from caption_gen.backends.vllm_backend import cpu_engine_kwargs
    from pedes_core.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        cpu_engine_kwargs(_spec(tmp_path, max_model_len=2048), available=4 * 1024**2)
    msg = str(err.value)
    assert "\n" not in msg and "max_model_len" in msg and "kv_cache_gib" in msg
    with pytest.raises(ConfigError, match=r"kv_cache_gib=4\.0 .*models\.0\.kv_cache_gib"):
        cpu_engine_kwargs(_spec(tmp_path, kv_cache_gib=4.0), available=4 * GIB)


def test_set_addresses_a_model_list_item(tmp_path):
    from caption_gen.captioning.config import load_caption_config

    cfg = load_caption_config(flags={"images": str(tmp_path), "out": str(tmp_path / "c"),
                                     "models": [{"backend": "vllm", "path": str(tmp_path)}]},
                              overrides=["models.0.kv_cache_gib=0.5", "models.0.max_model_len=1024"])
    assert cfg.models[0].kv_cache_gib == 0.5 and cfg.models[0].max_model_len == 1024
