"""The registered seed-002 methods: loss keys, gradients everywhere (DDP-safe), determinism,
NAM state through extra_state, pretrained loading."""

from __future__ import annotations

import pytest
import torch

import training.methods  # noqa: F401  (registers the methods)
from pedes_core.errors import ConfigError
from training.registry import METHODS

CASES = [
    ("sdm", {}, {"sdm_loss"}),
    ("sdm", {"itc_weight": 0.5, "id_weight": 1.0}, {"sdm_loss", "itc_loss", "id_loss"}),
    ("nam_sdm", {}, {"sdm_loss"}),
    ("nam_sdm", {"masking": "em"}, {"sdm_loss"}),
    ("nam_sdm", {"mlm_weight": 1.0}, {"sdm_loss", "mlm_loss"}),
    ("irra", {}, {"sdm_loss", "id_loss", "mlm_loss"}),
]


def _build(name, config, tokenizer, tmp_path=None, num_classes=3, **params):
    torch.manual_seed(0)
    method = METHODS.build(
        name, model=config, num_classes=num_classes, num_captions=10, tokenizer=tokenizer, **params
    )
    if tmp_path is not None and hasattr(method, "set_run_dir"):
        method.set_run_dir(tmp_path)
    return method


def _total(out):
    return sum(v for k, v in out.items() if k.endswith("_loss"))


@pytest.mark.parametrize(("name", "params", "loss_keys"), CASES)
def test_forward_keys_backward_and_every_parameter_has_a_gradient(
    name, params, loss_keys, method_model_config, method_tokenizer, method_batch, tmp_path
) -> None:
    method = _build(name, method_model_config, method_tokenizer, tmp_path, **params).train()
    method.on_epoch_start(0)
    out = method(method_batch)
    assert {k for k in out if k.endswith("_loss")} == loss_keys
    assert all(v.ndim == 0 and torch.isfinite(v) for v in out.values())
    _total(out).backward()
    missing = [n for n, p in method.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []  # DDP can run with find_unused_parameters=False
    assert (
        method.encode_image(method_batch["images"]).shape
        == method.encode_text(method_batch["text_tokens"]).shape
    )


@pytest.mark.parametrize("name", ["sdm", "nam_sdm", "irra"])
def test_deterministic_given_torch_seed(
    name, method_model_config, method_tokenizer, method_batch, tmp_path
) -> None:
    results = []
    for run in range(2):
        method = _build(name, method_model_config, method_tokenizer, tmp_path / str(run)).train()
        method.on_epoch_start(0)
        results.append({k: v.item() for k, v in method(method_batch).items()})
    assert results[0] == results[1]


def test_nam_and_em_share_everything_but_probabilities(
    method_model_config, method_tokenizer, method_batch, tmp_path
):
    nam = _build("nam_sdm", method_model_config, method_tokenizer, tmp_path / "nam").train()
    em = _build("nam_sdm", method_model_config, method_tokenizer, tmp_path / "em", masking="em").train()
    nam.on_epoch_start(0)
    em.on_epoch_start(0)
    # first epoch: NAM has no stored r and masks every word token with p, exactly like EM
    tokens, ids = method_batch["text_tokens"], method_batch["caption_ids"]
    assert torch.equal(nam.masking_probabilities_for(tokens, ids), em.masking_probabilities_for(tokens, ids))
    valid = method_tokenizer.word_token_mask(tokens)
    assert torch.allclose(nam.masking_probabilities_for(tokens, ids)[valid], torch.tensor(0.15))
    out_nam, out_em = nam(method_batch), em(method_batch)
    assert out_nam["sdm_loss"].item() == pytest.approx(out_em["sdm_loss"].item(), rel=1e-6)
    nam.on_epoch_end(0)
    nam.on_epoch_start(1)
    probs = nam.masking_probabilities_for(tokens, ids)
    assert not torch.allclose(probs[valid], torch.tensor(0.15))  # now driven by the stored r
    per_caption = (probs * valid).sum(1) / valid.sum(1)
    assert torch.all(per_caption >= 0.15 - 1e-6)  # mean p before clipping; clipping only raises it


def test_planted_store_masks_noisy_words_more(method_model_config, method_tokenizer, tmp_path) -> None:
    method = _build("nam_sdm", method_model_config, method_tokenizer, tmp_path).train()
    tokens = method_tokenizer(["a man in a red jacket and black trousers"] * 10)
    ids = torch.arange(10)
    valid = method_tokenizer.word_token_mask(tokens)
    noise = torch.where(valid, torch.tensor(0.2), torch.tensor(0.0))
    noise[:, 5] = 0.9  # the word "red" never matches the image
    method.on_epoch_start(0)
    method._noise_store().write(ids, noise)
    method.on_epoch_end(0)
    selected = torch.zeros_like(tokens, dtype=torch.float)
    for epoch in range(1, 41):
        method.on_epoch_start(epoch)
        probs = method.masking_probabilities_for(tokens, ids)
        selected += method._mask(tokens, probs, ids, 1).selected.float()
        method._noise_store().write(ids, noise)  # keep the planted r for the next epoch
        method.on_epoch_end(epoch)
    rate_red = selected[:, 5].mean() / 40
    rate_other = selected[valid].sum() / (40 * valid.sum())
    assert rate_red > 0.6 and rate_red > 3 * rate_other


def test_nam_state_survives_checkpoint(method_model_config, method_tokenizer, method_batch, tmp_path) -> None:
    method = _build("nam_sdm", method_model_config, method_tokenizer, tmp_path / "run").train()
    method.on_epoch_start(0)
    method(method_batch)
    method.on_epoch_end(0)
    method.on_epoch_start(1)
    method(method_batch)
    torch.save({"model": method.state_dict(), "method": method.extra_state()}, tmp_path / "ckpt.pt")
    checkpoint = torch.load(tmp_path / "ckpt.pt", weights_only=True)

    resumed = _build("nam_sdm", method_model_config, method_tokenizer, tmp_path / "resumed").train()
    resumed.load_state_dict(checkpoint["model"])
    resumed.load_extra_state(checkpoint["method"])
    resumed.on_epoch_start(1)
    tokens, ids = method_batch["text_tokens"], method_batch["caption_ids"]
    assert torch.equal(
        resumed.masking_probabilities_for(tokens, ids), method.masking_probabilities_for(tokens, ids)
    )
    assert resumed(method_batch)["sdm_loss"].item() == pytest.approx(
        method(method_batch)["sdm_loss"].item(), rel=1e-6
    )


def test_eval_forward_does_not_touch_the_store(method_model_config, method_tokenizer, method_batch, tmp_path):
    method = _build("nam_sdm", method_model_config, method_tokenizer, tmp_path).eval()
    with torch.no_grad():
        out = method(method_batch)
    assert set(out) == {"sdm_loss"}
    assert not (tmp_path / "nam_store").exists()


def test_load_pretrained_skips_mismatched_heads(method_model_config, method_tokenizer, tmp_path) -> None:
    source = _build("irra", method_model_config, method_tokenizer, num_classes=7)
    path = tmp_path / "pretrained.pt"
    torch.save({"model": source.state_dict(), "step": 3}, path)
    target = _build("irra", method_model_config, method_tokenizer, num_classes=11)
    torch.manual_seed(1)
    target.classifier.reset_parameters()
    before = target.classifier.weight.clone()
    report = target.load_pretrained(path)
    assert report.skipped_shape == ["classifier.weight", "classifier.bias"]
    assert torch.equal(target.classifier.weight, before)
    assert torch.equal(target.backbone.clip.visual.proj, source.backbone.clip.visual.proj)
    assert torch.equal(target.mlm_head.net.fc.weight, source.mlm_head.net.fc.weight)
    sdm = _build("sdm", method_model_config, method_tokenizer)
    report = sdm.load_pretrained(path)  # heads the sdm method lacks are reported, not loaded
    assert "classifier.weight" in report.unexpected and not report.missing


def test_bad_params_and_checkpoints_are_config_errors(
    method_model_config, method_tokenizer, tmp_path
) -> None:
    with pytest.raises(ConfigError, match="masking"):
        _build("nam_sdm", method_model_config, method_tokenizer, masking="random")
    with pytest.raises(ConfigError, match="unknown key"):
        _build("irra", method_model_config, method_tokenizer, no_such_param=1)
    method = _build("sdm", method_model_config, method_tokenizer)
    torch.save({"weights": {}}, tmp_path / "bad.pt")
    with pytest.raises(ConfigError, match="'model'"):
        method.load_pretrained(tmp_path / "bad.pt")


def test_mlm_head_on_masked_positions_only_equals_the_full_vocabulary_loss(method_model_config, method_tokenizer,
                                                                          method_batch) -> None:
    """The MLM head projects only the masked positions to the vocabulary; loss, accuracy and gradients are
    those of the full [B, L, V] computation (IRRA's token-mean cross-entropy)."""
    from training.losses.mlm import IGNORE_INDEX, mlm_loss
    from training.registry import METHODS

    torch.manual_seed(0)
    method = METHODS.build("irra", model=method_model_config, num_classes=3, num_captions=4,
                           tokenizer=method_tokenizer)
    tokens = method_batch["text_tokens"]
    labels = torch.full_like(tokens, IGNORE_INDEX)
    labels[:, 1:4] = tokens[:, 1:4]
    image_tokens = torch.randn(4, 9, method.cross_modal.width)
    text_states = torch.randn(4, tokens.shape[1], image_tokens.shape[-1], requires_grad=True)
    fast = method._mlm_losses(text_states, image_tokens, labels)
    full_logits = method.mlm_head(method.cross_modal(text_states, image_tokens))
    slow = method.params.mlm_weight * mlm_loss(full_logits, labels)
    assert torch.allclose(fast["mlm_loss"], slow, atol=1e-5)
    g_fast = torch.autograd.grad(fast["mlm_loss"], text_states, retain_graph=True)[0]
    g_slow = torch.autograd.grad(slow, text_states)[0]
    assert torch.allclose(g_fast, g_slow, atol=1e-6)
    none = method._mlm_losses(text_states, image_tokens, torch.full_like(tokens, IGNORE_INDEX))
    assert float(none["mlm_loss"]) == 0.0 and none["mlm_loss"].requires_grad


@pytest.mark.parametrize(("name", "params"), [("irra", {"mlm_weight": 0.0}), ("nam_sdm", {"masking": "em"})])
def test_global_losses_run_on_the_used_columns_and_equal_the_full_width(
    name, params, method_model_config, method_tokenizer, method_batch, tmp_path
) -> None:
    """Without an MLM head the text tower sees only the batch's used columns; the losses are those of the
    full 77-column captions."""
    method = _build(name, method_model_config, method_tokenizer, tmp_path, **params).train()
    method.on_epoch_start(0)
    backbone = method.backbone
    widths: list[int] = []
    hook = backbone.clip.token_embedding.register_forward_hook(
        lambda _m, inputs, _o: widths.append(inputs[0].shape[1]))
    torch.manual_seed(1)
    out = method(method_batch)
    hook.remove()
    tokens = method_batch["text_tokens"]
    used = int((tokens != method_tokenizer.pad_token_id).sum(dim=1).max())
    assert tokens.shape[1] == 77 and widths[0] == used < 77
    if name == "irra":  # no masking: the same losses from the full-width forward
        image_tokens, _ = backbone.image_tokens(method_batch["images"])
        text_tokens, _ = backbone.text_tokens(tokens)
        full = method._global_losses(image_tokens[:, 0], backbone.pool_text(text_tokens, tokens),
                                     method_batch["person_ids"])
        for key in ("sdm_loss", "id_loss"):
            assert torch.allclose(out[key], full[key], atol=1e-5)
