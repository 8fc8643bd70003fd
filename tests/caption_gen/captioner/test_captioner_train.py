"""``train_captioner``'s progress callback and cache reuse, at a size that trains in seconds."""

from __future__ import annotations

import pytest

from caption_gen.captioner import CaptionerConfig, train_captioner
from tests.captioner_settings import MICRO_CAPTIONER, MICRO_CAPTIONER_QWEN

MICRO = MICRO_CAPTIONER


def test_progress_is_called_every_step_and_loss_lines_leave_the_terminal(tmp_path):
    cfg = CaptionerConfig(cache_dir=tmp_path / "cache", **MICRO)
    lines: list[str] = []
    steps: list[tuple[int, int]] = []
    path = train_captioner(cfg, log=lines.append, progress=lambda s, t: steps.append((s, t)))
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert not any("step " in ln for ln in lines)  # with a bar, the loss lines go to the log file only
    assert (path / "config.json").is_file()
    # without a bar, the loss lines are printed; a second call reuses the cached model and trains nothing
    again: list[tuple[int, int]] = []
    assert train_captioner(cfg, log=lines.append, progress=lambda s, t: again.append((s, t))) == path
    assert again == [] and any("reusing cached captioner" in ln for ln in lines)
    printed: list[str] = []
    train_captioner(CaptionerConfig(cache_dir=tmp_path / "cache2", **{**MICRO, "steps": 2}), log=printed.append)
    assert sum("step " in ln for ln in printed) == 2


@pytest.mark.parametrize("head", ["linear", "attention"])
def test_vision_stage_trains_the_vision_tower_only_and_lowers_the_attribute_loss(tmp_path, head):
    """Stage 1 (``vision_steps``): the attribute loss falls over its steps, the vision tower and projector
    move, the language model does not; the progress bar counts both stages."""
    import numpy as np
    import torch

    from caption_gen.captioner.arch_llava import LlavaArch
    from caption_gen.captioner.aux_heads import build_aux_head
    from caption_gen.captioner.examples import AUX_ATTRIBUTES, BatchSampler
    from caption_gen.captioner.train import _vision_stage

    cfg = CaptionerConfig(cache_dir=tmp_path / "cache", **{**MICRO, "vision_steps": 40, "vision_batch_size": 8,
                                                            "log_every": 10, "lr": 3e-3, "warmup_steps": 2})
    torch.manual_seed(0)
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    llava = LlavaForConditionalGeneration(LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=1,
                                       image_size=32, patch_size=16),
        text_config=LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                                num_attention_heads=1, num_key_value_heads=1, head_dim=64)))
    sizes = [len(v) for v in AUX_ATTRIBUTES.values()]
    aux_head = build_aux_head(head, 4, 64, sizes)

    # four fixed images with fixed labels (the stage reads only pixels, labels and the generator of the
    # sampler): the loss must fall when the stage learns
    g = torch.Generator().manual_seed(1)
    sampler = BatchSampler.__new__(BatchSampler)
    sampler.pixels = torch.randn(4, 3, 32, 32, generator=g).half()
    sampler.aux = torch.randint(0, 2, (4, len(sizes)), generator=g).numpy()
    sampler.image_rng = np.random.default_rng(0)
    sampler.mirror = LlavaArch(cfg).mirror
    lm_before = {k: v.clone() for k, v in llava.model.language_model.state_dict().items()}
    vis_before = {k: v.clone() for k, v in llava.model.vision_tower.state_dict().items()}
    calls: list[tuple[int, int]] = []
    history = _vision_stage(cfg, LlavaArch(cfg), llava, aux_head, sizes, sampler, "k", lambda _m: None, lambda s, t: calls.append((s, t)))
    assert calls[-1] == (40, 43) and len(calls) == 40
    assert history[-1]["aux_loss"] < 0.7 * history[0]["aux_loss"]
    assert all(torch.equal(v, llava.model.language_model.state_dict()[k]) for k, v in lm_before.items())
    assert any(not torch.equal(v, llava.model.vision_tower.state_dict()[k]) for k, v in vis_before.items())


def test_vision_steps_are_part_of_the_cache_key():
    assert CaptionerConfig(vision_steps=0).cache_key("d") != CaptionerConfig(vision_steps=10).cache_key("d")


def test_cached_vision_features_give_the_same_loss_as_pixels():
    """``freeze_vision``: the joint step's embeddings from cached tower features are LLaVA's own (same loss
    as a forward from pixels), and the tower is frozen."""
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    from caption_gen.captioner.arch_llava import LlavaArch
    from caption_gen.captioner.train import _embeds_with_image, _vision_features

    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=1,
                                       image_size=32, patch_size=16),
        text_config=LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                                num_attention_heads=1, num_key_value_heads=1, head_dim=64),
        image_token_index=299, vision_feature_select_strategy="default", vision_feature_layer=-1)).eval()
    pixels = torch.randn(3, 3, 32, 32)
    ids = torch.randint(0, 299, (3, 12))
    ids[:, 1:5] = 299  # four image tokens (2×2 patches)
    ref = model(input_ids=ids, pixel_values=pixels, labels=ids).loss
    arch = LlavaArch(CaptionerConfig(arch="llava"))
    feats = _vision_features(arch, model, pixels.half(), batch=2)
    assert feats.shape == (3, 4, 32) and not any(p.requires_grad for p in model.model.vision_tower.parameters())
    got = model(inputs_embeds=_embeds_with_image(arch, model, ids, feats.float())[0], labels=ids).loss
    assert torch.allclose(ref, got, atol=2e-3), (ref, got)
    other = model(inputs_embeds=_embeds_with_image(arch, model, ids, feats.float().flip(0))[0], labels=ids).loss
    assert not torch.allclose(ref, other, atol=2e-3)  # the features are what the loss reads


def test_aux_heads_read_tokens_differently():
    """``attention`` pools each attribute with its own softmax read of the tokens (invariant to their order);
    ``linear`` reads every token by position (not invariant)."""
    import torch

    from caption_gen.captioner.aux_heads import build_aux_head

    torch.manual_seed(0)
    tokens = torch.randn(2, 6, 16)
    perm = tokens[:, torch.randperm(6)]
    att, lin = build_aux_head("attention", 6, 16, [2, 3]), build_aux_head("linear", 6, 16, [2, 3])
    assert [t.shape for t in att(tokens)] == [(2, 2), (2, 3)] == [t.shape for t in lin(tokens)]
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(att(tokens), att(perm), strict=True))
    assert not all(torch.allclose(a, b, atol=1e-5) for a, b in zip(lin(tokens), lin(perm), strict=True))
    with pytest.raises(ValueError, match="aux_head"):
        build_aux_head("mean", 6, 16, [2])


#: per architecture: its micro settings, the saved names of its vision tower (projector excluded) and of its
#: language model's layers
TOWERS = {"llava": (MICRO, ("vision_tower",), "language_model"),
          "qwen2vl": (MICRO_CAPTIONER_QWEN, ("visual.patch_embed", "visual.blocks"), "model.layers")}


@pytest.mark.parametrize("arch", ["llava", "qwen2vl"])
def test_the_vision_stage_is_reused_by_captioners_that_differ_only_after_it(tmp_path, arch):
    """A second captioner with other joint-stage settings (steps, noise) loads the first one's vision stage
    instead of training it, and ends with the same weights as when it trains that stage itself."""
    from safetensors.torch import load_file

    micro, tower_names, lm_name = TOWERS[arch]
    base = {**micro, "vision_steps": 3, "vision_batch_size": 2, "freeze_vision": True, "cache_dir": tmp_path / "c"}
    first = train_captioner(CaptionerConfig(**base))
    lines: list[str] = []
    second_cfg = CaptionerConfig(**{**base, "steps": 4, "noise": 0.2})
    second = train_captioner(second_cfg, log=lines.append)
    assert any("reusing the vision stage" in ln for ln in lines)
    a, b = load_file(str(first / "model.safetensors")), load_file(str(second / "model.safetensors"))
    tower = [k for k in a if any(name in k for name in tower_names)]
    assert tower and all((a[k] == b[k]).all() for k in tower)  # frozen after the shared stage
    assert any(not (a[k] == b[k]).all() for k in a if lm_name in k)
    # trained from scratch (no cached stage): the same weights as the run that reused it
    fresh_cfg = CaptionerConfig(**{**base, "steps": 4, "noise": 0.2, "cache_dir": tmp_path / "fresh"})
    fresh_lines: list[str] = []
    fresh = load_file(str(train_captioner(fresh_cfg, log=fresh_lines.append) / "model.safetensors"))
    assert not any("reusing the vision stage" in ln for ln in fresh_lines)
    assert all((fresh[k] == b[k]).all() for k in b)
    assert CaptionerConfig(**base).vision_stage_key("d") != CaptionerConfig(**{**base, "seed": 1}).vision_stage_key("d")


def test_a_joint_batch_holds_whole_images():
    with pytest.raises(ValueError, match="multiple of examples_per_image"):
        CaptionerConfig(batch_size=6, examples_per_image=4)
    packed, single = CaptionerConfig(examples_per_image=4), CaptionerConfig(examples_per_image=1)
    assert packed.cache_key("d") != single.cache_key("d")
    assert packed.vision_stage_key("d") == single.vision_stage_key("d")  # the joint stage only
    assert CaptionerConfig(vision_hflip=0.0).vision_stage_key("d") != CaptionerConfig().vision_stage_key("d")


def test_vision_hflip_reaches_the_vision_stage(tmp_path):
    """The same seed and images with ``vision_hflip`` 0 and 1 end with different vision towers."""
    import torch
    from safetensors.torch import load_file

    towers = []
    for flip in (0.0, 1.0):
        cfg = CaptionerConfig(**{**MICRO, "vision_steps": 2, "vision_batch_size": 2, "freeze_vision": True,
                                 "vision_hflip": flip, "cache_dir": tmp_path / f"c{flip}"})
        weights = load_file(str(train_captioner(cfg) / "model.safetensors"))
        towers.append({k: v for k, v in weights.items() if "vision_tower" in k})
    assert towers[0].keys() == towers[1].keys()
    assert any(not torch.equal(towers[0][k], towers[1][k]) for k in towers[0])


def test_length_groups_change_the_joint_stage_only(tmp_path):
    """``length_groups`` regroups the joint stage's examples: other weights, the same vision stage."""
    from safetensors.torch import load_file

    base = {**MICRO, "steps": 4, "vision_steps": 2, "vision_batch_size": 2, "freeze_vision": True,
            "cache_dir": tmp_path / "c"}
    one, four = CaptionerConfig(**base), CaptionerConfig(**{**base, "length_groups": 4})
    assert one.vision_stage_key("d") == four.vision_stage_key("d") and one.cache_key("d") != four.cache_key("d")
    a, b = (load_file(str(train_captioner(c) / "model.safetensors")) for c in (one, four))
    assert any(not (a[k] == b[k]).all() for k in a if "language_model" in k)


def test_init_from_a_captioner_of_another_arch_is_an_input_error(tmp_path):
    from pedes_core.errors import InputError

    parent = train_captioner(CaptionerConfig(cache_dir=tmp_path / "c", **MICRO))
    with pytest.raises(InputError, match="init_from is a 'llava' model; arch 'qwen2vl' continues a 'qwen2_vl' one"):
        train_captioner(CaptionerConfig(cache_dir=tmp_path / "c", init_from=parent, **MICRO_CAPTIONER_QWEN))
