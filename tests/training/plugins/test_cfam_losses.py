"""CFAM losses (seed 004 Eqs. 4-5) against hand-computed tiny cases."""

from __future__ import annotations

import math

import pytest
import torch

from training.losses import sdm_loss
from training.losses.cfam_losses import (
    hard_negative_indices,
    local_similarity,
    matching_loss,
    sdm_loss_from_similarity,
)


def test_local_similarity_is_mean_of_query_cosines() -> None:
    v = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])  # 1 image, K = 2
    w = torch.tensor([[[1.0, 1.0], [0.0, -1.0]], [[3.0, 0.0], [0.0, 1.0]]])  # 2 texts
    sim = local_similarity(v, w)
    assert sim.shape == (1, 2)
    assert float(sim[0, 0]) == pytest.approx((1 / math.sqrt(2) - 1) / 2, rel=1e-6)
    assert float(sim[0, 1]) == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("ids", [[0, 1, 2], [4, 4, 9]])
def test_sdm_from_similarity_matches_feature_sdm(ids: list[int]) -> None:
    g = torch.Generator().manual_seed(1)
    image, text = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    pid = torch.tensor(ids)
    sim = torch.nn.functional.normalize(image, dim=-1) @ torch.nn.functional.normalize(text, dim=-1).t()
    assert float(sdm_loss_from_similarity(sim, pid, 0.1)) == pytest.approx(
        float(sdm_loss(image, text, pid, 0.1)), rel=1e-5
    )


def test_sdm_from_similarity_hand_case_distinct() -> None:
    sim = torch.tensor([[0.5, 0.1], [0.2, 0.4]])
    tau = 0.5
    def kl(row: list[float], target: int) -> float:
        ex = [math.exp(x / tau) for x in row]
        p = [e / sum(ex) for e in ex]
        return sum(pj * (math.log(pj) - math.log((1.0 if j == target else 0.0) + 1e-8)) for j, pj in enumerate(p))
    expected = (kl([0.5, 0.1], 0) + kl([0.2, 0.4], 1)) / 2 + (kl([0.5, 0.2], 0) + kl([0.1, 0.4], 1)) / 2
    assert float(sdm_loss_from_similarity(sim, torch.tensor([0, 1]), tau)) == pytest.approx(expected, rel=1e-5)


def test_hard_negatives_distinct_and_repeated_identities() -> None:
    sim = torch.tensor([[0.9, 0.8, 0.1], [0.7, 0.9, 0.3], [0.2, 0.6, 0.9]])
    t4i, i4t, iv, tv = hard_negative_indices(sim, torch.tensor([0, 1, 2]))
    assert t4i.tolist() == [1, 0, 1] and i4t.tolist() == [1, 0, 1]
    assert iv.all() and tv.all()
    # images 0 and 1 share an identity: text 1 is not a negative for image 0
    t4i, i4t, iv, tv = hard_negative_indices(sim, torch.tensor([5, 5, 2]))
    assert t4i.tolist() == [2, 2, 1] and i4t.tolist() == [2, 2, 1]
    # single identity: no negative at all, all flagged invalid
    _, _, iv, tv = hard_negative_indices(sim, torch.tensor([3, 3, 3]))
    assert not iv.any() and not tv.any()


def test_matching_loss_bce_and_masking() -> None:
    logits = torch.tensor([2.0, -1.0, 0.5])
    labels = torch.tensor([1.0, 0.0, 0.0])
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = -(math.log(sig(2.0)) + math.log(1 - sig(-1.0)) + math.log(1 - sig(0.5))) / 3
    assert float(matching_loss(logits, labels)) == pytest.approx(expected, rel=1e-5)
    valid = torch.tensor([True, True, False])
    expected2 = -(math.log(sig(2.0)) + math.log(1 - sig(-1.0))) / 2
    assert float(matching_loss(logits, labels, valid)) == pytest.approx(expected2, rel=1e-5)
