"""CLIP backbone: geometry, layer-l token access, encoders, random init offline, local checkpoints."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch

from pedes_core.errors import ConfigError
from training.models.clip_backbone import ClipBackbone
from training.models.config import ModelConfig
from training.models.position_embedding import interpolate_position_embedding, patch_grid


def test_patch_grid_for_paper_geometry() -> None:
    assert patch_grid((384, 128), 16, 16) == (24, 8)
    assert patch_grid((384, 128), 16, 12) == (31, 10)


def test_backbone_at_384x128_has_24x8_patches(tiny_reid_backbone: ClipBackbone) -> None:
    visual = tiny_reid_backbone.clip.visual
    assert tiny_reid_backbone.grid == (24, 8)
    assert visual.positional_embedding.shape[0] == 1 + 24 * 8
    tokens, _ = tiny_reid_backbone.image_tokens(torch.randn(2, 3, 384, 128))
    assert tokens.shape == (2, 1 + 24 * 8, tiny_reid_backbone.embed_dim)


def test_overlapping_stride_12(clip_tokenizer) -> None:
    backbone = ClipBackbone(
        ModelConfig(arch="tiny", image_size=(384, 128), stride=12), clip_tokenizer.vocab_size
    )
    assert backbone.grid == (31, 10)
    tokens, layer = backbone.image_tokens(torch.randn(1, 3, 384, 128), return_layer=1)
    assert tokens.shape[1] == layer.shape[1] == 1 + 31 * 10


def test_interpolation_keeps_class_token_and_layout() -> None:
    old = (4, 4)
    rows = torch.arange(old[0], dtype=torch.float32).repeat_interleave(old[1])  # value = row index
    pos = torch.cat([torch.full((1, 3), -7.0), rows[:, None].repeat(1, 3)])
    new = interpolate_position_embedding(pos, old, (24, 8))
    assert new.shape == (1 + 24 * 8, 3)
    assert torch.equal(new[0], pos[0])
    grid = new[1:, 0].reshape(24, 8)
    assert torch.allclose(grid, grid[:, :1].expand(24, 8), atol=1e-5)  # constant along width
    assert torch.all(grid[1:, 0] >= grid[:-1, 0] - 1e-5)  # increasing along height
    assert torch.equal(interpolate_position_embedding(pos, old, old), pos)


def test_layer_token_access_shapes_and_consistency(tiny_reid_backbone: ClipBackbone, clip_tokenizer) -> None:
    backbone = tiny_reid_backbone
    layer = backbone.nam_layer
    assert layer == 2  # nam_layer 10 clipped to the tiny depth
    images = torch.randn(2, 3, 384, 128)
    text = clip_tokenizer(["a man in a red jacket", "a woman carrying a black bag and wearing boots"])
    with torch.no_grad():
        image_final, image_layer = backbone.image_tokens(images, return_layer=1)
        text_final, text_layer = backbone.text_tokens(text, return_layer=1)
        early = backbone.text_layer_tokens(text, 1)
    width = backbone.clip.visual.transformer.width
    assert width == 64  # model_configs/tiny.json
    assert image_layer.shape == (2, 1 + 192, width)
    assert text_layer.shape == (2, 77, backbone.clip.transformer.width)
    assert text_final.shape == (2, 77, backbone.embed_dim)
    assert torch.allclose(early, text_layer, atol=1e-6)
    assert backbone.project_image_tokens(image_layer).shape == (2, 193, backbone.embed_dim)


def test_encoders_match_open_clip_and_dims(tiny_reid_backbone: ClipBackbone, clip_tokenizer) -> None:
    images = torch.randn(3, 3, 384, 128)
    text = clip_tokenizer(["red shirt", "blue jeans and white shoes", "long hair"])
    with torch.no_grad():
        image = tiny_reid_backbone.encode_image(images)
        txt = tiny_reid_backbone.encode_text(text)
        assert image.shape == txt.shape == (3, tiny_reid_backbone.embed_dim)
        assert torch.allclose(image, tiny_reid_backbone.clip.encode_image(images), atol=1e-5)
        assert torch.allclose(txt, tiny_reid_backbone.clip.encode_text(text), atol=1e-5)


def test_embed_dim_override(clip_tokenizer) -> None:
    backbone = ClipBackbone(
        ModelConfig(arch="tiny", image_size=(32, 32), embed_dim=24), clip_tokenizer.vocab_size
    )
    assert backbone.encode_image(torch.randn(1, 3, 32, 32)).shape == (1, 24)


def test_random_init_needs_no_network(monkeypatch, clip_tokenizer) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    backbone = ClipBackbone(ModelConfig(arch="tiny", image_size=(64, 32)), clip_tokenizer.vocab_size)
    assert backbone.grid == (4, 2)


def test_vit_b16_geometry_without_weights(monkeypatch, clip_tokenizer) -> None:
    monkeypatch.setattr(
        socket.socket, "connect", lambda *a, **k: (_ for _ in ()).throw(AssertionError("net"))
    )
    backbone = ClipBackbone(ModelConfig(), clip_tokenizer.vocab_size)
    assert backbone.grid == (24, 8)
    assert backbone.nam_layer == 10
    assert backbone.embed_dim == 512
    assert backbone.clip.visual.positional_embedding.shape == (193, 768)


def test_local_checkpoint_round_trip(
    tmp_path: Path, tiny_reid_backbone: ClipBackbone, clip_tokenizer
) -> None:
    path = tmp_path / "tiny_clip.pt"
    torch.save(tiny_reid_backbone.clip.state_dict(), path)
    config = tiny_reid_backbone.config.model_copy(update={"checkpoint": path})
    reloaded = ClipBackbone(config, clip_tokenizer.vocab_size)
    for key, value in tiny_reid_backbone.clip.state_dict().items():
        assert torch.equal(value, reloaded.clip.state_dict()[key]), key


def test_square_checkpoint_is_interpolated(tmp_path: Path, clip_tokenizer) -> None:
    square = ClipBackbone(
        ModelConfig(arch="tiny", image_size=(64, 64)), clip_tokenizer.vocab_size
    )  # 4x4 grid
    path = tmp_path / "square.pt"
    torch.save(square.clip.state_dict(), path)
    target = ClipBackbone(
        ModelConfig(arch="tiny", image_size=(384, 128), checkpoint=path), clip_tokenizer.vocab_size
    )
    pos = target.clip.visual.positional_embedding
    assert pos.shape[0] == 1 + 24 * 8
    assert torch.equal(pos[0], square.clip.visual.positional_embedding[0])
    assert torch.equal(target.clip.visual.conv1.weight, square.clip.visual.conv1.weight)


def test_bad_checkpoint_and_arch_are_config_errors(tmp_path: Path, clip_tokenizer) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="junk.pt"):
        ClipBackbone(
            ModelConfig(arch="tiny", image_size=(64, 32), checkpoint=junk), clip_tokenizer.vocab_size
        )
    with pytest.raises(ConfigError, match="model.arch"):
        ClipBackbone(ModelConfig(arch="no-such-model"), clip_tokenizer.vocab_size)
    with pytest.raises(ConfigError, match="model.checkpoint"):
        ClipBackbone(
            ModelConfig(arch="tiny", image_size=(64, 32), checkpoint=tmp_path / "missing.pt"),
            clip_tokenizer.vocab_size,
        )


def test_model_configs_are_data_registered_with_open_clip(clip_tokenizer) -> None:
    """The project's archs are open_clip JSON configs; recipe fields replace theirs; bad names are errors."""
    import json

    import open_clip

    from training.models.clip_backbone import MODEL_CONFIG_DIR, PROJECT_ARCHS, tower_config

    assert {"tiny", "cpu-tiny"} <= PROJECT_ARCHS
    on_disk = json.loads((MODEL_CONFIG_DIR / "cpu-tiny.json").read_text())
    assert open_clip.get_model_config("cpu-tiny") == on_disk  # open_clip itself knows the name
    cfg = ModelConfig(arch="cpu-tiny", image_size=(64, 32), stride=8, context_length=64)
    backbone = ClipBackbone(cfg, clip_tokenizer.vocab_size)
    assert backbone.vision_layers == 3 and backbone.embed_dim == 96 and backbone.patch_size == 8
    wider = ModelConfig(arch="cpu-tiny", image_size=(64, 32), stride=8, context_length=64,
                        vision={"layers": 1}, text={"width": 64, "heads": 2}, embed_dim=48)
    changed = ClipBackbone(wider, clip_tokenizer.vocab_size)
    assert changed.vision_layers == 1 and changed.clip.transformer.width == 64 and changed.embed_dim == 48
    assert tower_config(cfg)["vision_cfg"]["layers"] == 3  # the registry entry itself is never modified
    with pytest.raises(ConfigError, match=r"model.vision: unknown open_clip field\(s\) \['depth'\]"):
        tower_config(ModelConfig(arch="tiny", vision={"depth": 2}))
    with pytest.raises(ConfigError, match="model.text: width 64 is not a multiple of heads 3"):
        tower_config(ModelConfig(arch="tiny", text={"heads": 3}))
    with pytest.raises(ConfigError, match="unknown model config 'nope'"):
        tower_config(ModelConfig(arch="nope"))
    with pytest.raises(Exception, match="tiny_width"):  # the old knobs are gone, not ignored
        ModelConfig(arch="tiny", tiny_width=32)


def test_trim_padding_cuts_the_shared_padding_and_keeps_the_text_feature(
    tiny_reid_backbone: ClipBackbone, clip_tokenizer
) -> None:
    text = clip_tokenizer(["red shirt", "a woman carrying a black bag and wearing white boots"])
    trimmed = ClipBackbone.trim_padding(text)
    longest = int((text != clip_tokenizer.pad_token_id).sum(dim=1).max())
    assert text.shape[1] == 77 and trimmed.shape[1] == longest  # the longest row keeps its [EOS]
    assert torch.equal(trimmed, text[:, :longest])
    widths: list[int] = []
    hook = tiny_reid_backbone.clip.token_embedding.register_forward_hook(
        lambda _m, inputs, _o: widths.append(inputs[0].shape[1]))
    with torch.no_grad():
        short = tiny_reid_backbone.encode_text(text)
        full = tiny_reid_backbone.pool_text(tiny_reid_backbone.text_tokens(text)[0], text)
    hook.remove()
    assert widths == [longest, 77]  # encode_text ran the tower on the used columns only
    assert torch.allclose(short, full, atol=1e-5)  # causal tower + [EOS] pooling: exact
    assert ClipBackbone.trim_padding(torch.zeros(2, 5, dtype=torch.long)).shape == (2, 5)
