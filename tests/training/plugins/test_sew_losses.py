"""Sew calibration loss (seed 003 Eqs. 5-10) against hand-computed tiny cases."""

from __future__ import annotations

import math

import pytest
import torch

from training.losses.sew import length_adaptive_margin, sew_id_loss, sew_match_loss

ALPHA = 2.0  # small scale so the hand numbers stay readable


def _unit(*angles: float) -> torch.Tensor:
    return torch.tensor([[math.cos(a), math.sin(a)] for a in angles])


def test_margin_interpolates_and_clamps() -> None:
    m = length_adaptive_margin(torch.tensor([10, 20, 40, 60, 90]), 20, 60)
    assert torch.allclose(m, torch.tensor([0.4, 0.4, 0.5, 0.6, 0.6]))
    with pytest.raises(ValueError):
        length_adaptive_margin(torch.tensor([1]), 5, 5)


def test_match_all_distinct_identities_only_push_with_paired_positive() -> None:
    # two anchors, two candidates, distinct ids: pull has no positive (k != i) → 0;
    # push (choice 1) uses the paired candidate as the positive: log(1 + exp(α(s_ij − s_ii + M))).
    a = _unit(0.0, math.pi / 2)
    b = _unit(0.1, math.pi / 2 + 0.3)
    ids = torch.tensor([0, 1])
    m = torch.tensor([0.5, 0.4])
    s = a @ b.t()
    expected = (
        math.log1p(math.exp(ALPHA * (s[0, 1] - s[0, 0] + 0.5)))
        + math.log1p(math.exp(ALPHA * (s[1, 0] - s[1, 1] + 0.4)))
    ) / 2
    got = sew_match_loss(a, b, ids, m, ALPHA)
    assert float(got) == pytest.approx(float(expected), rel=1e-5)


def test_match_repeated_identities_pull_and_push() -> None:
    a = _unit(0.0, 0.2, 2.0)
    b = _unit(0.05, 0.3, 2.2)
    ids = torch.tensor([7, 7, 3])
    m = torch.full((3,), 0.5)
    s = (a @ b.t()).tolist()
    total = 0.0
    for i in range(3):
        pos = [k for k in range(3) if ids[k] == ids[i] and k != i]
        neg = [j for j in range(3) if ids[j] != ids[i]]
        pull = math.log(1 + sum(math.exp(ALPHA * (s[i][k] - s[i][i] + 0.5)) for k in pos))
        push = math.log(
            1 + sum(math.exp(ALPHA * (s[i][j] - s[i][k] + 0.5)) for k in pos + [i] for j in neg)
        )
        total += pull + push
    assert float(sew_match_loss(a, b, ids, m, ALPHA)) == pytest.approx(total / 3, rel=1e-5)


def test_match_single_identity_batch_has_no_push_and_scale_invariance() -> None:
    a = _unit(0.0, 1.0)
    b = _unit(0.5, 1.0)
    ids = torch.tensor([1, 1])
    s = (a @ b.t()).tolist()
    pull0 = math.log1p(math.exp(ALPHA * (s[0][1] - s[0][0] + 0.4)))
    pull1 = math.log1p(math.exp(ALPHA * (s[1][0] - s[1][1] + 0.4)))
    got = sew_match_loss(a * 5, b * 0.1, ids, torch.full((2,), 0.4), ALPHA)  # features are normalized
    assert float(got) == pytest.approx((pull0 + pull1) / 2, rel=1e-5)


def test_id_loss_projection_and_margin() -> None:
    a = torch.tensor([[3.0, 4.0], [0.0, 2.0]])  # ā = (0.6, 0.8), (0, 1)
    b = torch.tensor([[1.0, 0.0], [0.0, 5.0]])  # b̄ = (1, 0), (0, 1)
    w = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # ω̄ rows normalized
    ids = torch.tensor([0, 1])
    m = torch.tensor([0.5, 0.4])
    # sample 0: â = 0.6·(1,0) → scores (0.6, 0, 0.6/√2); sample 1: â = (0,1) → (0, 1, 1/√2)
    r2 = math.sqrt(2)
    l0 = -math.log(
        math.exp(ALPHA * (0.6 - 0.5))
        / (math.exp(ALPHA * (0.6 - 0.5)) + math.exp(0.0) + math.exp(ALPHA * 0.6 / r2))
    )
    l1 = -math.log(
        math.exp(ALPHA * (1 - 0.4)) / (math.exp(ALPHA * (1 - 0.4)) + math.exp(0.0) + math.exp(ALPHA / r2))
    )
    got = sew_id_loss(a, b, w, ids, m, ALPHA)
    assert float(got) == pytest.approx((l0 + l1) / 2, rel=1e-5)


def test_match_gradient_pulls_pair_together() -> None:
    a = _unit(0.0, 1.5).requires_grad_(True)
    b = _unit(0.8, 1.5)
    loss = sew_match_loss(a, b, torch.tensor([0, 1]), torch.full((2,), 0.5), 32.0)
    loss.backward()
    stepped = a.detach() - 0.01 * a.grad
    assert float(sew_match_loss(stepped, b, torch.tensor([0, 1]), torch.full((2,), 0.5), 32.0)) < float(loss.detach())
