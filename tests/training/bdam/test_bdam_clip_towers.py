"""BDAM on open_clip towers (``method.params.towers: clip``): one CLIP of ``model.arch`` (random, or the
``model.checkpoint`` weights, e.g. a NAM-pretrained run exported as a CLIP state dict) as seed 000's image
and text encoders, instead of the transformers ViT + BERT."""

from pathlib import Path

import pytest
import torch

import training.methods  # noqa: F401  (registers "bdam")
from pedes_core.errors import ConfigError
from training.models.clip_backbone import ClipBackbone
from training.registry import METHODS


@pytest.fixture()
def clip_config(tiny_model_config):
    """The BDAM tests' tiny towers with a stride that matches their 8-pixel patches (ClipBackbone's rule)."""
    return tiny_model_config.model_copy(update={"stride": 8})


def _build(cfg, tok, **params):
    torch.manual_seed(0)
    kwargs = dict(depth=1, heads=2, fusion="mlp", fusion_dim=32, gradnorm=False, towers="clip", text_pooling="eos")
    kwargs.update(params)
    return METHODS.build("bdam", model=cfg, num_classes=12, num_captions=0, tokenizer=tok, **kwargs)


def _checkpoint(tmp_path: Path, cfg, tok) -> tuple[Path, ClipBackbone]:
    torch.manual_seed(123)
    source = ClipBackbone(cfg, tok.vocab_size)
    path = tmp_path / "pretrained_clip.pt"
    torch.save(source.clip.state_dict(), path)
    return path, source.eval()


def test_checkpoint_weights_reach_both_towers(tmp_path, clip_config, clip_tokenizer,
                                              clothes_change_data) -> None:
    path, source = _checkpoint(tmp_path, clip_config, clip_tokenizer)
    loaded = _build(clip_config.model_copy(update={"checkpoint": path}), clip_tokenizer).eval()
    random = _build(clip_config, clip_tokenizer).eval()
    images = clothes_change_data["query"].images[:4]
    ids = clip_tokenizer(clothes_change_data["query"].captions[:4])
    with torch.no_grad():
        want_img = source.image_tokens(images)[0][:, 1:]
        want_txt = source.text_tokens(ids)[0]
        got_txt = loaded.encode_text_states(ids)
        torch.testing.assert_close(loaded.image_encoder(images), want_img)
        torch.testing.assert_close(got_txt.states, want_txt[:, : got_txt.states.shape[1]])
        assert not torch.allclose(random.image_encoder(images), want_img, atol=1e-3)  # the weights made the change


def test_clip_weights_are_registered_once(clip_config, clip_tokenizer) -> None:
    m = _build(clip_config, clip_tokenizer)
    keys = list(m.state_dict())
    assert any(k.startswith("clip.clip.visual.") for k in keys) and any(k.startswith("clip.clip.transformer.")
                                                                          for k in keys)
    assert not any(k.startswith(("image_encoder.", "text_encoder.")) for k in keys)
    assert m.image_encoder.last_shared_layer().data_ptr() in {p.data_ptr() for p in m.clip.parameters()}


def test_eos_pooling_reads_the_end_of_text_and_ignores_padding(clip_config, clip_tokenizer,
                                                                clothes_change_data) -> None:
    m = _build(clip_config, clip_tokenizer).eval()
    caps = clothes_change_data["query"].captions[:4]
    ids = clip_tokenizer(caps)
    with torch.no_grad():
        st = m.encode_text_states(ids)
        eos = ids.argmax(dim=-1)
        torch.testing.assert_close(st.pooled, st.states[torch.arange(4), eos])
        short = m.encode_text(ids)
        padded = m.encode_text(clip_tokenizer([*caps, caps[0] + " and" * 8]))[:4]  # a wider batch
    torch.testing.assert_close(short, padded, atol=1e-5, rtol=1e-4)
    assert float(torch.nn.functional.cosine_similarity(short[0], short[1], dim=0)) < 0.9999  # depends on the words


def test_a_training_step_moves_the_clip_towers(clip_config, clip_tokenizer, clothes_change_data) -> None:
    m = _build(clip_config, clip_tokenizer, disabled_losses=["info", "triplet", "aln", "decouple"])
    train = clothes_change_data["train"]
    before = {n: p.detach().clone() for n, p in m.clip.named_parameters()}
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    batch = {"images": train.images[:8], "text_tokens": clip_tokenizer(train.captions[:8]),
             "person_ids": train.pids[:8], "identity_caption": [f"person {int(p)}" for p in train.pids[:8]]}
    m.train()
    m(batch)["bdam_loss"].backward()
    opt.step()
    moved = {n for n, p in m.clip.named_parameters() if not torch.equal(p, before[n])}
    assert any(n.startswith("clip.visual.") for n in moved) and any(n.startswith("clip.transformer.") for n in moved)


@pytest.mark.parametrize(("params", "field"), [
    ({"towers": "clip", "text_pooling": "cls"}, "text_pooling"),
    ({"towers": "hf", "text_pooling": "eos"}, "text_pooling"),
    ({"towers": "clip", "text_pooling": "eos", "text_encoder": "/some/bert"}, "image_encoder/text_encoder"),
    ({"towers": "timm", "text_pooling": "eos"}, "towers"),
])
def test_bad_combinations_are_config_errors(clip_config, clip_tokenizer, params, field) -> None:
    with pytest.raises(ConfigError, match=f"method.params.{field}"):
        _build(clip_config, clip_tokenizer, **params)
