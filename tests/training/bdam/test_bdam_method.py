"""The registered "bdam" method: forward losses, ablation switches, two-stage retrieval, gate PNG, errors."""

import pytest
import torch

import training.methods  # noqa: F401  (registers "bdam")
from pedes_core.errors import ConfigError, InputError
from training.methods.bdam import two_stage_scores
from training.registry import METHODS


def _build(cfg, tok, **params):
    torch.manual_seed(0)
    return METHODS.build("bdam", model=cfg, num_classes=4, num_captions=0, tokenizer=tok, depth=1, heads=2,
                         fusion_dim=32, hard_negatives=3, **params)


def _batch(tok, data, n=8):
    t = data["train"]
    idx = torch.arange(n)
    return {"images": t.images[idx], "text_tokens": tok([t.captions[i] for i in idx]), "person_ids": t.pids[idx],
            "identity_caption": [t.identity[i] for i in idx], "clothing_caption": [t.clothing[i] for i in idx]}


@pytest.mark.parametrize("params", [
    {}, {"cross_attention": False}, {"gate": False}, {"fusion": "mlp"}, {"fusion": "transformer"},
    {"fusion_gate": False}, {"fusion_align": False}, {"use_bdam": False}, {"gradnorm": False},
    {"disabled_losses": ["aln", "decouple", "gate_reg"]},
])
def test_forward_and_ablations_train(params, tiny_model_config, clip_tokenizer, clothes_change_data) -> None:
    m = _build(tiny_model_config, clip_tokenizer, **params).train()
    out = m(_batch(clip_tokenizer, clothes_change_data))
    assert torch.isfinite(out["bdam_loss"])
    out["bdam_loss"].backward()
    assert any(p.grad is not None for p in m.image_encoder.parameters())
    assert set(m.tasks) <= {k for k in out}


def test_two_stage_full_k_equals_exhaustive_fusion(tiny_model_config, clip_tokenizer, clothes_change_data) -> None:
    m = _build(tiny_model_config, clip_tokenizer).eval()
    g = clothes_change_data["gallery"]
    q = clip_tokenizer(clothes_change_data["query"].captions[:4])
    _, stage2 = two_stage_scores(m, q, g.images, top_k=len(g.images))
    exhaustive = torch.stack([
        m.rerank_scores(q[i : i + 1].expand(len(g.images), -1), g.images) for i in range(len(q))])
    assert torch.equal(stage2.argmax(1), exhaustive.argmax(1))
    stage1, stage2_small = two_stage_scores(m, q, g.images, top_k=3)
    assert (stage2_small.topk(3, dim=1).indices.sort(1).values == stage1.topk(3, dim=1).indices.sort(1).values).all()


def test_gate_histogram_png_and_state(tiny_model_config, clip_tokenizer, clothes_change_data, tmp_path) -> None:
    m = _build(tiny_model_config, clip_tokenizer).eval()
    g = clothes_change_data["gallery"]
    m.encode_image(g.images)
    m.rerank_scores(clip_tokenizer(["a slim person"] * 4), g.images[:4])
    m.set_run_dir(tmp_path)
    m.on_epoch_end(0)
    png = tmp_path / "bdam_gates.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    state = m.extra_state()
    other = _build(tiny_model_config, clip_tokenizer)
    other.load_extra_state(state)
    assert torch.equal(other.gradnorm.weights, m.gradnorm.weights)


def test_missing_descriptions_and_bad_params(tiny_model_config, clip_tokenizer, clothes_change_data) -> None:
    batch = _batch(clip_tokenizer, clothes_change_data)
    del batch["clothing_caption"], batch["identity_caption"]
    with pytest.raises(InputError, match="clothing_caption|identity_caption"):
        _build(tiny_model_config, clip_tokenizer).train()(batch)
    out = _build(tiny_model_config, clip_tokenizer, missing_descriptions="skip").train()(batch)
    assert torch.isfinite(out["bdam_loss"])
    with pytest.raises(ConfigError, match="disabled_losses"):
        _build(tiny_model_config, clip_tokenizer, disabled_losses=["nope"])
