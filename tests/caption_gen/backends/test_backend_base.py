"""The backend interface helpers, ModelSpec checks, the factory cache and the stub backend."""

from __future__ import annotations

import pytest
from PIL import Image

from caption_gen.backends.base import (
    GenerationRequest,
    messages_with_image,
    resize_to_pixel_budget,
    resolve_sampling,
)
from caption_gen.backends.factory import build_backend
from caption_gen.backends.spec import ModelSpec
from pedes_core.errors import ConfigError


@pytest.mark.parametrize("size,budget", [((128, 384), 128 * 64), ((1000, 999), 12345), ((7, 3), 20)])
def test_resize_respects_budget_and_aspect(size, budget):
    out = resize_to_pixel_budget(Image.new("RGB", size), budget)
    assert out.width * out.height <= budget
    assert out.width * out.height > budget * 0.5  # not shrunk more than needed
    # aspect kept up to one pixel of rounding on the shorter side
    assert abs(out.width * size[1] - out.height * size[0]) <= max(size)


def test_resize_keeps_small_images_and_none_budget():
    img = Image.new("RGB", (64, 128))
    assert resize_to_pixel_budget(img, 64 * 128) is img
    assert resize_to_pixel_budget(img, None) is img


def test_messages_with_image_puts_part_first_in_first_user_turn():
    msgs = [{"role": "system", "content": "sys"}, {"role": "user", "content": "describe"},
            {"role": "assistant", "content": "ok"}, {"role": "user", "content": "again"}]
    out = messages_with_image(msgs, {"type": "image"})
    assert out[0] == {"role": "system", "content": "sys"}
    assert out[1]["content"] == [{"type": "image"}, {"type": "text", "text": "describe"}]
    assert out[3]["content"] == [{"type": "text", "text": "again"}]
    assert msgs[1]["content"] == "describe"  # input untouched
    with pytest.raises(ValueError, match="no user message"):
        messages_with_image([{"role": "system", "content": "x"}], {"type": "image"})


def test_resolve_sampling_defaults_and_values():
    r = resolve_sampling(GenerationRequest("a", [], temperature=0.0, max_tokens=5, seed=3))
    assert (r.temperature, r.max_tokens, r.seed) == (0.0, 5, 3)
    assert resolve_sampling(GenerationRequest("b", [])).max_tokens > 0


def test_model_spec_missing_path_and_key_name(tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="model path does not exist"):
        ModelSpec(backend="vllm", path=tmp_path / "nope")
    with pytest.raises(ValidationError, match="needs 'path'"):
        ModelSpec(backend="transformers")
    with pytest.raises(ValidationError, match="api_base"):
        ModelSpec(backend="openai")
    with pytest.raises(ValidationError, match="NAME"):
        ModelSpec(backend="stub", api_key_env="sk-live abc/123")
    spec = ModelSpec(backend="transformers", path=tmp_path)
    assert spec.label == tmp_path.name and spec.trust_remote_code is False
    assert spec.limit_mm_per_prompt == {"image": 1, "video": 0}


def test_build_backend_checks_before_loading(tmp_path, monkeypatch):
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    spec = ModelSpec(backend="transformers", path=model_dir)
    model_dir.rmdir()  # disappears after the config was loaded
    with pytest.raises(ConfigError, match="model path does not exist"):
        build_backend(spec)
    monkeypatch.delenv("PEDES_TEST_KEY_UNSET", raising=False)
    with pytest.raises(ConfigError, match="PEDES_TEST_KEY_UNSET"):
        build_backend(ModelSpec(backend="stub", api_key_env="PEDES_TEST_KEY_UNSET"))


def test_factory_caches_per_spec_and_keeps_labels():
    a = build_backend(ModelSpec(backend="stub", name="a"))
    assert build_backend(ModelSpec(backend="stub", name="a")) is a
    b = build_backend(ModelSpec(backend="stub", name="b"))
    assert b.name == "b" and a.name == "a"
    c = build_backend(ModelSpec(backend="stub", name="c", stub_captions={"static": ["A man in a red coat."]}))
    assert c is not a


def test_stub_is_deterministic_and_kind_aware():
    from caption_gen.validation.validate import validate_caption

    stub = build_backend(ModelSpec(backend="stub", name="stub-det"))
    reqs = [GenerationRequest(f"img{i}|{k}|m|a1", [{"role": "user", "content": "x"}], image=Image.new("RGB", (8, 16)),
                              seed=i, metadata={"kind": k, "image_id": f"img{i}"})
            for i in range(4) for k in ("static", "dynamic", "identity", "clothing")]
    first, second = stub.generate(reqs), stub.generate(reqs)
    assert [r.text for r in first] == [r.text for r in second]
    assert len({r.text for r in first}) > 4
    for req, res in zip(reqs, first, strict=True):
        vr = validate_caption(res.text, req.metadata["kind"], finish_reason=res.finish_reason)
        assert vr.passed, (req.metadata["kind"], res.text, vr.reasons)
