"""LRC / GSRC-FR relation losses (seed 001 Eqs. 3-18) and the memory bank against hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from training.losses.weak_relations import (
    global_relation_loss,
    global_relation_targets,
    global_relations,
    local_relation_loss,
    local_relation_matrix,
    relation_kl_loss,
    relation_targets,
    softened_targets,
)
from training.memory_bank import FeatureBank


def _unit(*angles: float) -> torch.Tensor:
    return torch.tensor([[math.cos(a), math.sin(a)] for a in angles])


def test_local_relations_need_both_modalities() -> None:
    img = _unit(0.0, 0.1, 2.0)  # images 0,1 similar (cos .995), 2 far
    txt = _unit(0.0, 1.5, 2.05)  # texts 0,1 dissimilar; 2 close to nothing... except itself
    rel = local_relation_matrix(img, txt, 0.7)
    assert rel.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]  # Hadamard: image-only similarity is not enough
    txt2 = _unit(0.0, 0.2, 2.05)
    rel2 = local_relation_matrix(img, txt2, 0.7)
    assert rel2.tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]


def test_softened_targets_hand_case_and_empty_rows() -> None:
    rel = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    q = softened_targets(rel, 0.5)
    # row 0: Q = [1, 0.5, −∞] → softmax
    e1, e5 = math.exp(1.0), math.exp(0.5)
    assert q[0].tolist() == pytest.approx([e1 / (e1 + e5), e5 / (e1 + e5), 0.0], rel=1e-6)
    assert q[2].tolist() == pytest.approx([0.0, 0.0, 1.0])  # empty relation row → one-hot on the pair


def test_relation_kl_hand_case() -> None:
    sim = torch.tensor([[0.3, 0.1], [0.0, 0.2]])
    target = torch.tensor([[0.75, 0.25], [0.0, 1.0]])
    tau = 0.5
    total = 0.0
    for row, t in zip(sim.tolist(), target.tolist(), strict=True):
        ex = [math.exp(x / tau) for x in row]
        p = [e / sum(ex) for e in ex]
        total += sum(pj * math.log(pj / (tj + 1e-8)) for pj, tj in zip(p, t, strict=True))
    assert float(relation_kl_loss(sim, target, tau)) == pytest.approx(total / 2, rel=1e-5)


def _non_transitive_relation() -> torch.Tensor:
    """a~b and b~c but a≁c (Eq. 4 can give this: thresholds are not transitive)."""
    return torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])


def test_text_to_image_targets_are_distributions_on_a_non_transitive_batch() -> None:
    relation = _non_transitive_relation()
    q_v, q_t = relation_targets(relation, 0.5)
    assert q_t.sum(dim=1).tolist() == pytest.approx([1.0, 1.0, 1.0], abs=1e-6)
    assert torch.allclose(q_t, softened_targets(relation.t(), 0.5))
    assert torch.allclose(q_t, q_v)  # M^{v,t} is symmetric, so text→image = image→text target
    transposed = q_v.t().sum(dim=1)  # the former target: not a distribution here
    assert transposed.tolist() == pytest.approx([0.897, 1.207, 0.897], abs=1e-3)
    # a non-symmetric relation (image 0 ~ text 1 only): the text→image target follows M^{t,v}
    asym = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    _, q_t_asym = relation_targets(asym, 0.5)
    assert q_t_asym[1].tolist() == pytest.approx(softened_targets(asym.t(), 0.5)[1].tolist())
    assert q_t_asym[1, 0] > 0 and q_t_asym[0].tolist() == pytest.approx([1.0, 0.0, 0.0])


def test_local_relation_loss_follows_eq_10_on_a_non_transitive_batch() -> None:
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    relation = _non_transitive_relation()
    q = softened_targets(relation, 0.5)
    sim = torch.nn.functional.normalize(img, dim=-1) @ torch.nn.functional.normalize(txt, dim=-1).t()
    # hand-computed Eq. 9 both ways, each against a row distribution over the other modality
    total = 0.0
    for s_rows, t_rows in ((sim, q), (sim.t(), softened_targets(relation.t(), 0.5))):
        for row, t in zip(s_rows.tolist(), t_rows.tolist(), strict=True):
            ex = [math.exp(x / 0.1) for x in row]
            p = [e / sum(ex) for e in ex]
            total += sum(pj * math.log(pj / (tj + 1e-8)) for pj, tj in zip(p, t, strict=True)) / 3
    loss = float(local_relation_loss(img, txt, relation, 0.1, 0.5))
    assert loss == pytest.approx(total, rel=1e-5)
    former = float(relation_kl_loss(sim, q, 0.1) + relation_kl_loss(sim.t(), q.t(), 0.1))
    assert abs(loss - former) > 1e-3  # the qᵀ target gave another loss on this batch
    with pytest.raises(ValueError, match="0/1 relation"):
        local_relation_loss(img, txt, q, 0.1)  # softened targets are not a relation


def test_feature_bank_momentum() -> None:
    bank = FeatureBank(4, 2, momentum=0.25)
    bank.update(torch.tensor([1]), torch.tensor([[2.0, 0.0]]))
    assert bank.features[1].tolist() == pytest.approx([1.0, 0.0]) and bank.filled.tolist() == [0, 1, 0, 0]
    bank.update(torch.tensor([1]), torch.tensor([[0.0, 1.0]]))
    mixed = torch.tensor([0.75, 0.25])
    assert bank.features[1].tolist() == pytest.approx((mixed / mixed.norm()).tolist(), rel=1e-6)
    assert bank.bytes_per_100k() == 100_000 * (2 * 4 + 1)
    with pytest.raises(IndexError):
        bank.update(torch.tensor([4]), torch.ones(1, 2))


def _bank_with(features: torch.Tensor) -> FeatureBank:
    bank = FeatureBank(features.shape[0], features.shape[1])
    bank.update(torch.arange(features.shape[0]), features)
    return bank


def test_global_relations_topk_threshold_and_exclusions() -> None:
    bank_img = _unit(0.0, 0.05, 0.3, 2.0, 0.02)  # row 4 is the batch sample itself → excluded
    bank = _bank_with(bank_img)
    batch_img = _unit(0.0, 2.05)
    rows = torch.tensor([4, 3])
    rel = global_relations(batch_img, bank.features, bank.filled, rows, threshold=0.7, top_k=2)
    # image 0: candidates rows 0 (1.0), 1 (.999), 2 (.955), 3 excluded (in batch); top-2 → {0, 1}
    # image 1: row 3 excluded, nothing else above 0.7 → empty relation row
    assert rel.columns.tolist() == [0, 1]
    assert rel.related.tolist() == [[True, False, True, True], [False, True, False, False]]
    assert rel.mined.tolist() == [2, 0]
    unfilled = FeatureBank(5, 2)
    empty = global_relations(batch_img, unfilled.features, unfilled.filled, rows, 0.7, 2)
    assert empty.columns.numel() == 0 and empty.related.shape == (2, 2)


def test_global_targets_adaptive_weight_eq14() -> None:
    bank = _bank_with(_unit(0.0, 0.3, 2.0))
    batch_img = _unit(0.1, 2.0)
    rel = global_relations(batch_img, bank.features, bank.filled, torch.tensor([2, 2]), 0.7, 5)
    # row 0: J'_0 = {batch 0, bank 0, bank 1}; row 1: only its pair
    assert rel.related.tolist() == [[True, False, True, True], [False, True, False, False]]
    q = global_relation_targets(rel)
    s = [1.0, math.cos(0.1), math.cos(0.2)]  # sim(f_0^v, ·) over J'_0
    soft = [math.exp(x) / sum(math.exp(y) for y in s) for x in s]
    qprime = [1.0, 1 - soft[1], 1 - soft[2]]  # the pair keeps Q' = 1 (Eq. 13), mined use Eq. 14
    z = sum(math.exp(x) for x in qprime)
    assert q[0].tolist() == pytest.approx([math.exp(qprime[0]) / z, 0.0, math.exp(qprime[1]) / z, math.exp(qprime[2]) / z], rel=1e-5)
    assert q[1].tolist() == pytest.approx([0.0, 1.0, 0.0, 0.0])


def test_global_loss_reduces_to_lrc_shape_without_bank_and_gradients_skip_bank() -> None:
    img = torch.randn(3, 4, requires_grad=True)
    txt = torch.randn(3, 4, requires_grad=True)
    bank = FeatureBank(6, 4)
    rel = global_relations(img.detach(), bank.features, bank.filled, torch.tensor([0, 1, 2]), 0.7, 3)
    loss = global_relation_loss(img, txt, bank.features, bank.features, rel, 0.1)
    eye = torch.eye(3)
    expected = local_relation_loss(img, txt, eye, 0.1)  # identity relation: one-hot targets both ways
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    loss.backward()
    assert img.grad is not None and not bank.features.requires_grad
