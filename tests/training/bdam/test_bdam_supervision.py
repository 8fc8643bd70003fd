"""BDAM supervision as seed 000 §3.2–3.5 write it: L_aln on the pooled f̂_clo (Eq. 1), the fused text is the
identity description f_id^t (§3.4), gate regularization off by default (conflict with Fig. 4), a warning
when a loss sees no positive pair in an epoch (Eq. 4 needs identity positives)."""

import logging

import pytest
import torch

import training.methods  # noqa: F401  (registers "bdam")
from training.losses.bdam_losses import info_nce
from training.registry import METHODS

ALL_BUT = {"aln": ["info", "itc", "triplet", "decouple", "gate_reg"]}
PK4x2 = [0, 1, 8, 9, 16, 17, 28, 29]  # 4 identities × 2 images (the train set holds 8 images per identity)


def _build(cfg, tok, **params):
    torch.manual_seed(0)
    return METHODS.build("bdam", model=cfg, num_classes=4, num_captions=0, tokenizer=tok, depth=1, heads=2,
                         fusion_dim=32, hard_negatives=3, **params)


def _batch(tok, data, idx):
    t = data["train"]
    idx = torch.as_tensor(idx)
    return {"images": t.images[idx], "text_tokens": tok([t.captions[i] for i in idx]), "person_ids": t.pids[idx],
            "identity_caption": [t.identity[i] for i in idx], "clothing_caption": [t.clothing[i] for i in idx]}


def test_aln_is_on_the_pooled_clothing_feature(tiny_model_config, clip_tokenizer, clothes_change_data) -> None:
    """Eq. 1 uses f̂_clo (before the gate): L_aln gives the dimension gate no gradient, and equals InfoNCE of the
    projected pooled feature; ``aln_feature: gated`` (the former code) does reach the gate."""
    batch = _batch(clip_tokenizer, clothes_change_data, PK4x2)
    m = _build(tiny_model_config, clip_tokenizer, gradnorm=False, disabled_losses=ALL_BUT["aln"]).eval()
    out = m(batch)
    out["aln"].requires_grad_(False)
    m.zero_grad()
    out["bdam_loss"].backward()
    gate_grad = m.bdam.gate.weight.grad
    assert gate_grad is None or gate_grad.abs().max().item() == 0.0
    assert m.clothing_proj.weight.grad.abs().max().item() > 0
    with torch.no_grad():
        st = m.encode_image_states(batch["images"])
        f_t = m.encode_text_states(batch["clothing_caption"]).pooled
        labels = torch.tensor([sorted(set(batch["clothing_caption"])).index(c) for c in batch["clothing_caption"]])
        expected = info_nce(m.clothing_proj(st.f_clo_hat), f_t, m.aln_temperature, labels)
    assert torch.allclose(out["aln"], expected, atol=1e-6)

    gated = _build(tiny_model_config, clip_tokenizer, gradnorm=False, disabled_losses=ALL_BUT["aln"],
                   aln_feature="gated").eval()
    gated(batch)["bdam_loss"].backward()
    assert gated.bdam.gate.weight.grad.abs().max().item() > 0


def test_fusion_fuses_the_identity_description(tiny_model_config, clip_tokenizer, clothes_change_data) -> None:
    """§3.4: L_info (Eq. 3) is computed on f_final(f_id^t, image) — changing the identity descriptions changes it
    (with ``fusion_text: caption``, the former behaviour, it does not)."""
    batch = _batch(clip_tokenizer, clothes_change_data, PK4x2)
    other = dict(batch, identity_caption=list(reversed(batch["identity_caption"])))
    m = _build(tiny_model_config, clip_tokenizer, gradnorm=False).eval()
    with torch.no_grad():
        a, b = m(batch)["info"], m(other)["info"]
    assert abs(a.item() - b.item()) > 1e-4
    c = _build(tiny_model_config, clip_tokenizer, gradnorm=False, fusion_text="caption").eval()
    with torch.no_grad():
        assert torch.equal(c(batch)["info"], c(other)["info"])


def test_gate_regularization_is_off_by_default(tiny_model_config, clip_tokenizer, clothes_change_data) -> None:
    batch = _batch(clip_tokenizer, clothes_change_data, PK4x2)
    with torch.no_grad():
        default = _build(tiny_model_config, clip_tokenizer, gradnorm=False).eval()(batch)
        opted = _build(tiny_model_config, clip_tokenizer, gradnorm=False, gate_reg_weight=0.1).eval()(batch)
    assert "gate_reg" not in default and "gate_id_mean" in default
    assert "gate_reg" in opted
    assert opted["bdam_loss"].item() != pytest.approx(default["bdam_loss"].item(), abs=1e-9)


def test_warns_when_the_triplet_loss_sees_no_positive_pair(tiny_model_config, clip_tokenizer, clothes_change_data,
                                                           caplog) -> None:
    """One-image identities (a random sampler over a corpus): the triplet loss is 0 all epoch → a warning."""
    pids = clothes_change_data["train"].pids
    distinct = [int((pids == p).nonzero()[0]) for p in range(6)]  # six different people
    m = _build(tiny_model_config, clip_tokenizer, gradnorm=False).train()
    with caplog.at_level(logging.WARNING, logger="training.methods.bdam"):
        with torch.no_grad():
            out = m(_batch(clip_tokenizer, clothes_change_data, distinct))
        assert out["triplet"].item() == 0.0
        assert m.warn_missing_positives(0) == ["triplet"]
    assert any("triplet loss saw no positive pair" in r.getMessage() for r in caplog.records)
    caplog.clear()
    pk = [i for p in range(3) for i in (pids == p).nonzero()[:2, 0].tolist()]  # P = 3 identities × K = 2
    with caplog.at_level(logging.WARNING, logger="training.methods.bdam"):
        with torch.no_grad():
            m(_batch(clip_tokenizer, clothes_change_data, pk))
        m.on_epoch_end(1)
    assert not [r for r in caplog.records if "positive pair" in r.getMessage()]
