"""The dual-encoder base every CLIP-based method shares: same backbone under every method, the same
encoders, and fine-tuning from any of their checkpoints (a CFAM / Sew / weak run can start from a NAM
pretraining run — before the shared base, these methods had no ``load_pretrained`` at all)."""

from __future__ import annotations

import pytest
import torch

import training.methods  # noqa: F401  (registers the methods)
from training.methods.dual_encoder import DualEncoderMethod
from training.registry import METHODS

CLIP_METHODS = ("sdm", "nam_sdm", "irra", "cfam", "sew_mcm", "weak_dual_granularity")


def _build(name, cfg, tok, **params):
    torch.manual_seed(0)
    return METHODS.build(name, model=cfg, num_classes=3, num_captions=4, tokenizer=tok, **params)


@pytest.mark.parametrize("name", CLIP_METHODS)
def test_every_clip_method_starts_from_the_same_backbone(name, method_model_config, method_tokenizer, method_batch):
    method = _build(name, method_model_config, method_tokenizer)
    reference = _build("sdm", method_model_config, method_tokenizer)
    assert isinstance(method, DualEncoderMethod)
    with torch.no_grad():  # same seed → the backbone is built first, from the same RNG state, in every method
        assert torch.equal(method.encode_image(method_batch["images"]), reference.encode_image(method_batch["images"]))
        assert torch.equal(method.encode_text(method_batch["text_tokens"]),
                           reference.encode_text(method_batch["text_tokens"]))


@pytest.mark.parametrize("name", ("cfam", "sew_mcm", "weak_dual_granularity"))
def test_plugin_methods_fine_tune_from_a_pretraining_checkpoint(name, method_model_config, method_tokenizer,
                                                                method_batch, tmp_path):
    torch.manual_seed(5)
    source = METHODS.build("nam_sdm", model=method_model_config, num_classes=1, num_captions=4,
                           tokenizer=method_tokenizer, masking="em")
    path = tmp_path / "pretrain.pt"
    torch.save({"model": source.state_dict()}, path)
    target = _build(name, method_model_config, method_tokenizer)
    images = method_batch["images"]
    with torch.no_grad():
        assert not torch.equal(target.encode_image(images), source.encode_image(images))
        report = target.load_pretrained(path)
        assert torch.equal(target.encode_image(images), source.encode_image(images))
        assert torch.equal(target.encode_text(method_batch["text_tokens"]),
                           source.encode_text(method_batch["text_tokens"]))
    assert report.loaded and all(k.startswith("backbone.") for k in report.loaded)
