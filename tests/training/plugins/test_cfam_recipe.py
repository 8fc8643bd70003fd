"""CFAM as published (seed 004 §5.1): the 168-token recipe loads a 77-token CLIP checkpoint, the randomly
initialised modules get their own learning rate, and captions are augmented by random masking/replacement."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import training.methods  # noqa: F401  (registers "cfam")
from pedes_core.errors import ConfigError
from training.config import load_recipe
from training.engine.optim import build_optimizer, build_scheduler, group_learning_rates
from training.models.clip_backbone import ClipBackbone
from training.models.config import ModelConfig
from training.models.position_embedding import extend_text_position_embedding
from training.registry import METHODS
from training.tokenization import ClipTokenizer

RECIPE = Path(__file__).parents[3] / "configs" / "cfam.yaml"
TINY = ["model.arch=tiny", "model.vision.width=32", "model.vision.layers=1", "model.vision.head_width=16",
        "model.text.width=32", "model.text.layers=1", "model.embed_dim=32", "model.image_size=[64,32]", "method.params.decoder_dim=32",
        "method.params.decoder_heads=4", "method.params.num_queries=4"]


def test_extend_text_position_embedding_keeps_head_and_end_points() -> None:
    pos = torch.randn(77, 8)
    out = extend_text_position_embedding(pos, 168)
    assert out.shape == (168, 8)
    assert torch.equal(out[:20], pos[:20])
    assert torch.allclose(out[20], pos[20]) and torch.allclose(out[-1], pos[-1])
    assert torch.equal(extend_text_position_embedding(pos, 50), pos[:50])


def _tiny_77_checkpoint(tmp_path: Path) -> Path:
    cfg = ModelConfig(arch="tiny", image_size=(64, 32), context_length=77,
                      vision={"width": 32, "layers": 1, "head_width": 16}, text={"width": 32, "layers": 1}, embed_dim=32)
    torch.manual_seed(1)
    src = ClipBackbone(cfg, ClipTokenizer(77).vocab_size)
    path = tmp_path / "clip77.pt"
    torch.save(src.clip.state_dict(), path)
    return path, src


def _cfam(recipe, tokenizer):
    torch.manual_seed(0)
    return METHODS.build("cfam", model=recipe.model, num_classes=4, num_captions=8, tokenizer=tokenizer,
                         **recipe.method.params)


def test_cfam_recipe_loads_a_77_token_checkpoint(tmp_path: Path) -> None:
    path, src = _tiny_77_checkpoint(tmp_path)
    recipe = load_recipe(RECIPE, [*TINY, f"model.checkpoint={path}"])
    assert recipe.model.context_length == 168
    tok = ClipTokenizer(168)
    method = _cfam(recipe, tok).eval()
    pos = method.backbone.clip.positional_embedding
    assert pos.shape[0] == 168 and torch.equal(pos[:20], src.clip.positional_embedding[:20])
    caption = "a man in a red shirt"  # < 20 tokens: encoded exactly as by the 77-token checkpoint
    with torch.no_grad():
        ours = method.encode_text(tok([caption]))
        theirs = src.encode_text(ClipTokenizer(77)([caption]))
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_cfam_random_init_modules_get_their_own_learning_rate(tmp_path: Path) -> None:
    recipe = load_recipe(RECIPE, TINY)
    assert recipe.optim.lr == pytest.approx(1e-5) and recipe.optim.group_lr == {"new": pytest.approx(5e-5)}
    method = _cfam(recipe, ClipTokenizer(168))
    opt = build_optimizer(method, recipe.optim)
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert all(lr_of[id(p)] == pytest.approx(5e-5) for p in method.decoder.parameters())
    assert all(lr_of[id(p)] == pytest.approx(5e-5) for p in method.matcher.parameters())
    assert all(lr_of[id(p)] == pytest.approx(5e-5) for p in method.classifier.parameters())
    assert all(lr_of[id(p)] == pytest.approx(1e-5) for p in method.backbone.parameters() if p.requires_grad)
    assert len(lr_of) == sum(1 for p in method.parameters() if p.requires_grad)
    sched = build_scheduler(opt, recipe.schedule, steps_per_epoch=10)
    for _ in range(25):
        opt.step()
        sched.step()
    ratios = {round(g["lr"] / g["initial_lr"], 9) for g in opt.param_groups}
    assert len(ratios) == 1  # one warmup/cosine factor for every group
    lrs = group_learning_rates(opt)
    assert set(lrs) == {"pretrained", "new"} and lrs["new"] == pytest.approx(5 * lrs["pretrained"])
    bad = recipe.optim.model_copy(update={"group_lr": {"decoder": 1e-4}})
    with pytest.raises(ConfigError, match="optim.group_lr"):
        build_optimizer(method, bad)


def test_cfam_augments_training_captions_only(plugin_model_config, plugin_tokenizer, plugin_batch) -> None:
    torch.manual_seed(0)
    method = METHODS.build("cfam", model=plugin_model_config, num_classes=8, num_captions=64,
                           tokenizer=plugin_tokenizer, decoder_dim=32, decoder_heads=4, num_queries=4,
                           text_aug_prob=0.5)
    seen: list[torch.Tensor] = []
    original = method.backbone.text_tokens
    method.backbone.text_tokens = lambda t, *a, **k: (seen.append(t.clone()), original(t, *a, **k))[1]
    tokens = plugin_batch["text_tokens"]
    words = plugin_tokenizer.word_token_mask(tokens)
    method.train()(plugin_batch)
    changed = seen[-1] != tokens
    assert changed.any() and not (changed & ~words).any()  # word tokens only; [SOS]/[EOS]/padding kept
    assert 0.2 < changed.sum().item() / words.sum().item() < 0.6
    method(plugin_batch)
    assert torch.equal(seen[-1], seen[-2])  # per (epoch, caption) draws: reproducible
    method.on_epoch_start(1)
    method(plugin_batch)
    assert not torch.equal(seen[-1], seen[-2])
    method.eval()(plugin_batch)
    assert torch.equal(seen[-1], tokens)  # evaluation never augments
