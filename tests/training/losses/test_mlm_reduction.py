"""MLM / MCM loss normalization (seed 003 Eq. 11): the declared ``token_mean`` default and Eq. 11's
literal per-caption sum differ on captions with different numbers of masked tokens."""

from __future__ import annotations

import math

import pytest
import torch

from training.losses.mlm import IGNORE_INDEX, mlm_loss


def _case() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=g)
    labels = torch.full((2, 5), IGNORE_INDEX)
    labels[0, 1], labels[0, 3], labels[0, 4] = 2, 5, 1  # caption 0: three masked tokens
    labels[1, 2] = 6  # caption 1: one masked token
    return logits, labels


def _nll(logits: torch.Tensor, b: int, i: int, label: int) -> float:
    row = logits[b, i].tolist()
    return -(row[label] - math.log(sum(math.exp(x) for x in row)))


def test_token_mean_and_caption_sum_against_hand_computed_eq_11() -> None:
    logits, labels = _case()
    nll = [[_nll(logits, 0, 1, 2), _nll(logits, 0, 3, 5), _nll(logits, 0, 4, 1)], [_nll(logits, 1, 2, 6)]]
    token_mean = sum(sum(c) for c in nll) / 4
    caption_sum = (sum(nll[0]) + sum(nll[1])) / 2  # Eq. 11 per caption, mean over the batch
    assert float(mlm_loss(logits, labels)) == pytest.approx(token_mean, rel=1e-5)
    assert float(mlm_loss(logits, labels, reduction="caption_sum")) == pytest.approx(caption_sum, rel=1e-5)
    assert abs(caption_sum - token_mean) > 0.1  # the choice matters: ≈ N̄ = 2 masked tokens per caption


def test_caption_sum_needs_batched_labels_and_unknown_reductions_fail() -> None:
    logits, labels = _case()
    with pytest.raises(ValueError, match="\\[B, L\\]"):
        mlm_loss(logits.reshape(-1, 7), labels.reshape(-1), reduction="caption_sum")
    with pytest.raises(ValueError, match="reduction"):
        mlm_loss(logits, labels, reduction="sum")
