"""The ``transformers`` reference backend on the same tiny LLaVA (and the Qwen2-VL fixture builder)."""

from __future__ import annotations

import pytest

from caption_gen.backends.base import GenerationRequest
from caption_gen.backends.factory import build_backend
from caption_gen.backends.spec import ModelSpec

PROMPT = [{"role": "user", "content": "Describe the person."}]


@pytest.fixture(scope="module")
def hf_backend(tiny_llava):
    return build_backend(ModelSpec(name="tiny-llava-hf", backend="transformers", path=tiny_llava, dtype="float32",
                                   ignore_eos=True), cache=False)


def test_generates_exact_token_counts_seeded(hf_backend, pil_images):
    reqs = [GenerationRequest(f"r{i}", PROMPT, image=im, temperature=0.8, max_tokens=12, seed=7 + i)
            for i, im in enumerate(pil_images[:3])]
    out = hf_backend.generate(reqs)
    assert [r.request_id for r in out] == ["r0", "r1", "r2"]
    assert all(r.num_tokens == 12 and r.finish_reason == "length" and r.error is None for r in out)
    assert [r.text for r in hf_backend.generate(reqs[:1])] == [out[0].text]


def test_batched_and_text_only(tiny_llava, pil_images):
    b = build_backend(ModelSpec(name="tiny-llava-hf4", backend="transformers", path=tiny_llava, dtype="float32",
                                hf_batch_size=4), cache=False)
    reqs = [GenerationRequest(f"r{i}", PROMPT, image=im, temperature=0.0, max_tokens=8) for i, im in
            enumerate(pil_images[:4])]
    reqs.append(GenerationRequest("t", [{"role": "user", "content": "hello"}], temperature=0.0, max_tokens=5))
    out = b.generate(reqs)
    assert len(out) == 5 and all(0 < r.num_tokens <= 8 for r in out)
    single = b.generate(reqs[1:2])  # greedy: batching (left padding) does not change the text
    assert single[0].text == out[1].text


def test_qwen2vl_fixture_runs_in_transformers(tmp_path, pil_images):
    from caption_gen.backends.tiny_vlm import build_tiny_vlm

    path = build_tiny_vlm(tmp_path / "qwen", arch="qwen2vl")
    assert build_tiny_vlm(path, arch="qwen2vl") == path  # idempotent
    b = build_backend(ModelSpec(backend="transformers", path=path, dtype="float32", max_pixels=112 * 56), cache=False)
    out = b.generate([GenerationRequest("q", PROMPT, image=pil_images[0], temperature=0.0, max_tokens=6)])
    assert out[0].error is None and 0 < out[0].num_tokens <= 6
