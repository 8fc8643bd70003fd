"""Method-level checks of ``sew_mcm``, ``cfam`` and ``weak_dual_granularity`` (tiny CLIP, CPU)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

import training.methods  # noqa: F401  (registers the methods)
from pedes_core.errors import ConfigError
from training.methods.weak_dual_granularity import hide_identity_labels
from training.registry import METHODS

SMALL_CFAM = {"decoder_dim": 32, "decoder_heads": 4, "num_queries": 4}


def build(name: str, config, tokenizer, num_classes: int = 8, num_captions: int = 64, **params: Any):
    torch.manual_seed(0)
    return METHODS.build(
        name, model=config, num_classes=num_classes, num_captions=num_captions, tokenizer=tokenizer, **params
    )


class LabelGuard(dict):
    """A batch that fails the test if identity labels are read."""

    def __getitem__(self, key: str) -> Any:
        assert key != "person_ids", "weakly supervised method read person_ids"
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        assert key != "person_ids", "weakly supervised method read person_ids"
        return super().get(key, default)

    def items(self) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        for key in self.keys():
            if key != "person_ids":
                yield key, super().__getitem__(key)


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("sew_mcm", {}, {"sew_match_loss", "sew_id_loss", "mcm_loss"}),
        ("sew_mcm", {"mcm_weight": 0}, {"sew_match_loss", "sew_id_loss"}),
        ("sew_mcm", {"sew_id": False, "adaptive_margin": False}, {"sew_match_loss", "mcm_loss"}),
        ("cfam", SMALL_CFAM, {"gs_loss", "ls_loss", "m_loss", "cid_loss"}),
        ("cfam", {**SMALL_CFAM, "m_weight": 0, "cid_weight": 0}, {"gs_loss", "ls_loss"}),
        ("weak_dual_granularity", {}, {"itc_loss", "lrc_loss", "gsrc_loss", "iasc_loss"}),
        ("weak_dual_granularity", {"gsrc_weight": 0, "iasc_weight": 0}, {"itc_loss", "lrc_loss"}),
    ],
)
def test_forward_losses_and_every_parameter_gets_gradient(
    name, params, expected, plugin_model_config, plugin_tokenizer, plugin_batch
) -> None:
    method = build(name, plugin_model_config, plugin_tokenizer, **params)
    method.train()
    out = method(dict(plugin_batch))
    losses = {k for k in out if k.endswith("_loss")}
    assert losses == expected
    total = sum(out[k] for k in losses)
    assert torch.isfinite(total)
    total.backward()
    missing = [n for n, p in method.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []


def test_unknown_param_is_config_error(plugin_model_config, plugin_tokenizer) -> None:
    for name in ("sew_mcm", "cfam", "weak_dual_granularity"):
        with pytest.raises(ConfigError):
            build(name, plugin_model_config, plugin_tokenizer, no_such_param=1)


def test_mcm_decoder_is_training_only(plugin_model_config, plugin_tokenizer, plugin_batch) -> None:
    method = build("sew_mcm", plugin_model_config, plugin_tokenizer)
    calls = []
    method.mcm_decoder.register_forward_hook(lambda *args: calls.append(1))
    method.eval()
    with torch.no_grad():
        method.encode_image(plugin_batch["images"])
        method.encode_text(plugin_batch["text_tokens"])
    assert calls == []
    method.train()
    method(dict(plugin_batch))
    assert calls == [1]  # the hook does fire when the decoder is used


def test_cfam_inference_uses_only_global_embeddings(plugin_model_config, plugin_tokenizer, plugin_batch) -> None:
    method = build("cfam", plugin_model_config, plugin_tokenizer, **SMALL_CFAM)
    calls = []
    method.decoder.register_forward_hook(lambda *args: calls.append("decoder"))
    method.matcher.register_forward_hook(lambda *args: calls.append("matcher"))
    with torch.no_grad():
        method.encode_image(plugin_batch["images"])
        method.encode_text(plugin_batch["text_tokens"])
    assert calls == []


def test_sew_margin_follows_caption_length(plugin_model_config, plugin_tokenizer) -> None:
    method = build("sew_mcm", plugin_model_config, plugin_tokenizer, length_min=3, length_max=9)
    tokens = plugin_tokenizer(["red shirt", "a person in a red shirt and blue trousers today", "a b c d e f"])
    lengths = plugin_tokenizer.word_token_mask(tokens).sum(1).float()
    expected = 0.4 + 0.2 * (lengths.clamp(3, 9) - 3) / 6
    assert torch.allclose(method.margins(tokens), expected)
    fixed = build("sew_mcm", plugin_model_config, plugin_tokenizer, adaptive_margin=False, fixed_margin=0.5)
    assert torch.allclose(fixed.margins(tokens), torch.full((3,), 0.5))


def test_mcm_masks_ten_percent_with_mask_token(plugin_model_config, plugin_tokenizer, plugin_batch) -> None:
    method = build("sew_mcm", plugin_model_config, plugin_tokenizer, mask_ratio=0.5)
    seen = {}

    def record(module, args, output) -> None:
        seen.setdefault("t", args[0])

    method.backbone.clip.token_embedding.register_forward_hook(record)
    method.train()
    method(dict(plugin_batch))
    masked = seen["t"]
    original = plugin_batch["text_tokens"]
    changed = masked != original
    assert changed.any()
    assert (masked[changed] == plugin_tokenizer.mask_token_id).all()  # a learnable token vector, never random words


def test_weak_method_never_reads_identity_labels(plugin_model_config, plugin_tokenizer, plugin_batch) -> None:
    method = build("weak_dual_granularity", plugin_model_config, plugin_tokenizer)
    method.train()
    guarded = LabelGuard(plugin_batch)
    out = method(guarded)
    assert "gsrc_loss" in out
    stripped = hide_identity_labels(plugin_batch)
    assert "person_ids" not in stripped
    out2 = method(stripped)  # the loader path without labels works
    assert torch.isfinite(sum(v for k, v in out2.items() if k.endswith("_loss")))
    assert method.image_bank.filled.sum() == len(plugin_batch["caption_ids"])


def test_weak_bank_roundtrips_through_state_dict(plugin_model_config, plugin_tokenizer, plugin_batch) -> None:
    method = build("weak_dual_granularity", plugin_model_config, plugin_tokenizer)
    method.train()
    method(dict(plugin_batch))
    other = build("weak_dual_granularity", plugin_model_config, plugin_tokenizer)
    other.load_state_dict(method.state_dict())
    assert torch.equal(other.image_bank.features, method.image_bank.features)
    assert torch.equal(other.text_bank.filled, method.text_bank.filled)
