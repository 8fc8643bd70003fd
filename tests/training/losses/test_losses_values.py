"""Each loss against a value written out by hand (scalar math, no torch softmax/CE)."""

from __future__ import annotations

import math

import pytest
import torch

from training.losses import IGNORE_INDEX, id_loss, itc_loss, mlm_loss, sdm_loss

# Unit features: cos(v1,t1)=1, cos(v1,t2)=0.6, cos(v2,t1)=0, cos(v2,t2)=0.8
IMAGE = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
TEXT = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
EPS = 1e-8


def _kl_row(logits: list[float], target: list[float]) -> float:
    z = sum(math.exp(a) for a in logits)
    p = [math.exp(a) / z for a in logits]
    return sum(pi * math.log(pi / (qi + EPS)) for pi, qi in zip(p, target, strict=True))


def test_sdm_distinct_identities_hand_value() -> None:
    tau = 1.0
    i2t = (_kl_row([1.0, 0.6], [1, 0]) + _kl_row([0.0, 0.8], [0, 1])) / 2
    t2i = (_kl_row([1.0, 0.0], [1, 0]) + _kl_row([0.6, 0.8], [0, 1])) / 2
    got = sdm_loss(IMAGE, TEXT, torch.tensor([3, 5]), temperature=tau)
    assert got.item() == pytest.approx(i2t + t2i, rel=1e-5)


def test_sdm_shared_identity_spreads_the_target() -> None:
    tau = 0.5
    half = [0.5, 0.5]
    i2t = (_kl_row([1.0 / tau, 0.6 / tau], half) + _kl_row([0.0, 0.8 / tau], half)) / 2
    t2i = (_kl_row([1.0 / tau, 0.0], half) + _kl_row([0.6 / tau, 0.8 / tau], half)) / 2
    got = sdm_loss(IMAGE, TEXT, torch.tensor([7, 7]), temperature=tau)
    assert got.item() == pytest.approx(i2t + t2i, rel=1e-5)


def test_sdm_default_temperature_is_002_and_cosine() -> None:
    # tau = 0.02 -> logits 50, 30, 0, 40; features scaled to check cosine normalisation
    i2t = (_kl_row([50.0, 30.0], [1, 0]) + _kl_row([0.0, 40.0], [0, 1])) / 2
    t2i = (_kl_row([50.0, 0.0], [1, 0]) + _kl_row([30.0, 40.0], [0, 1])) / 2
    got = sdm_loss(IMAGE * 3.0, TEXT * 0.25, torch.tensor([0, 1]))
    assert got.item() == pytest.approx(i2t + t2i, rel=1e-4, abs=1e-7)


def test_sdm_batch_size_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError):
        sdm_loss(IMAGE, TEXT, torch.tensor([0, 1, 2]))


def _ce(logits: list[float], target: int) -> float:
    return -logits[target] + math.log(sum(math.exp(a) for a in logits))


def test_itc_hand_value() -> None:
    tau = 0.5
    s = [[1.0 / tau, 0.6 / tau], [0.0, 0.8 / tau]]
    rows = (_ce(s[0], 0) + _ce(s[1], 1)) / 2
    cols = (_ce([s[0][0], s[1][0]], 0) + _ce([s[0][1], s[1][1]], 1)) / 2
    got = itc_loss(IMAGE, TEXT, temperature=tau)
    assert got.item() == pytest.approx((rows + cols) / 2, rel=1e-5)


def test_id_loss_hand_value() -> None:
    image_logits = [[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]]
    text_logits = [[0.0, 1.0, 0.0], [1.0, 2.0, 0.0]]
    labels = [0, 2]
    image_ce = (_ce(image_logits[0], 0) + _ce(image_logits[1], 2)) / 2
    text_ce = (_ce(text_logits[0], 0) + _ce(text_logits[1], 2)) / 2
    got = id_loss(torch.tensor(image_logits), torch.tensor(text_logits), torch.tensor(labels))
    assert got.item() == pytest.approx((image_ce + text_ce) / 2, rel=1e-6)


def test_mlm_loss_only_on_masked_positions() -> None:
    logits = [[[1.0, 0.0, 0.0], [0.0, 2.0, 1.0], [5.0, -5.0, 0.0]]]
    labels = [[IGNORE_INDEX, 2, 0]]
    expected = (_ce(logits[0][1], 2) + _ce(logits[0][2], 0)) / 2
    got = mlm_loss(torch.tensor(logits), torch.tensor(labels))
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_mlm_loss_without_masked_tokens_is_zero_with_gradient() -> None:
    logits = torch.randn(1, 3, 4, requires_grad=True)
    loss = mlm_loss(logits, torch.full((1, 3), IGNORE_INDEX))
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad is not None and torch.all(logits.grad == 0)
