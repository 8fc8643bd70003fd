"""Seed 000 Eq. 1–4 losses and gate regularization against hand-computed values."""

import math

import torch
import torch.nn.functional as F

from training.losses import hsic
from training.losses.bdam_losses import candidate_info_nce, gate_regularization, info_nce, triplet_loss


def test_hsic_matches_hand_computed_trace_formula() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = torch.tensor([[2.0], [0.0], [1.0]])
    # K_x = x xᵀ, K_y = y yᵀ, H = I − 1/3; tr(K_x H K_y H)/(N−1)²: centred x = [[1/3,−2/3],[−2/3,1/3],[1/3,1/3]],
    # centred y = [1,−1,0]; x_cᵀ y_c = [1, −1]; ‖·‖² = 2; / 4 = 0.5
    assert math.isclose(hsic(x, y).item(), 0.5, rel_tol=1e-6)
    n = 3
    h = torch.eye(n) - torch.ones(n, n) / n
    direct = torch.trace(x @ x.T @ h @ y @ y.T @ h) / (n - 1) ** 2
    assert math.isclose(hsic(x, y).item(), direct.item(), rel_tol=1e-6)


def test_hsic_near_zero_for_independent_and_growing_with_dependence() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 8, generator=g)
    noise = torch.randn(4000, 8, generator=g)
    values = [hsic(x, (1 - a) * noise + a * x).item() for a in (0.0, 0.3, 0.6, 1.0)]
    assert values[0] < 0.05 * values[-1]
    assert values == sorted(values)


def test_info_nce_hand_computed() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # normalised: e1, e2
    p = torch.tensor([[3.0, 0.0], [1.0, 1.0]])  # normalised: e1, (1,1)/√2
    tau = 0.5
    s = torch.tensor([[1.0, 1 / math.sqrt(2)], [0.0, 1 / math.sqrt(2)]]) / tau
    expected = -0.5 * (torch.log_softmax(s[0], 0)[0] + torch.log_softmax(s[1], 0)[1])
    assert math.isclose(info_nce(a, p, tau).item(), expected.item(), rel_tol=1e-6)
    scores = torch.tensor([[0.5, 0.1, float("-inf")]])
    expected_c = -math.log(math.exp(5.0) / (math.exp(5.0) + math.exp(1.0)))
    assert math.isclose(candidate_info_nce(scores, 0.1).item(), expected_c, rel_tol=1e-5)


def test_info_nce_label_positives_hand_computed() -> None:
    """With labels every same-label column is a positive (uniform target); distinct labels = the diagonal."""
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    p = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    tau = 0.5
    s = F.normalize(a, dim=-1) @ F.normalize(p, dim=-1).T / tau
    ls = torch.log_softmax(s, dim=1)
    # labels [0, 0, 1]: rows 0 and 1 have positives {0, 1} (weight ½ each), row 2 has {2}
    expected = -(0.5 * (ls[0, 0] + ls[0, 1]) + 0.5 * (ls[1, 0] + ls[1, 1]) + ls[2, 2]) / 3
    got = info_nce(a, p, tau, torch.tensor([0, 0, 1]))
    assert math.isclose(got.item(), expected.item(), rel_tol=1e-6)
    assert math.isclose(info_nce(a, p, tau, torch.tensor([0, 1, 2])).item(), info_nce(a, p, tau).item(), rel_tol=1e-6)
    assert not math.isclose(got.item(), info_nce(a, p, tau).item(), rel_tol=1e-3)


def test_triplet_batch_hard_hand_computed() -> None:
    f = torch.tensor([[0.0], [1.0], [3.0], [5.0]])
    labels = torch.tensor([0, 0, 1, 1])
    # squared distances: anchor0 pos 1, neg min 9 → 0; anchor1 pos 1, neg 4 → 0 (m=1: 1−4+1<0);
    # anchor2 pos 4, neg 4 → 1; anchor3 pos 4, neg 16 → 0  ⇒ mean 0.25
    assert math.isclose(triplet_loss(f, labels, 1.0).item(), 0.25, rel_tol=1e-6)
    assert triplet_loss(f, torch.arange(4), 1.0).item() == 0.0  # no positives: nothing valid


def test_gate_regularization_hand_computed() -> None:
    gate = torch.tensor([[0.5, 0.7], [0.1, 0.3]])  # row means 0.6, 0.2 → (0.01 + 0.09)/2 = 0.05
    weights = torch.tensor([[0.8, 0.2], [0.5, 0.5]])  # (0.09 + 0)/2 = 0.045
    assert math.isclose(gate_regularization(gate).item(), 0.05, rel_tol=1e-5)
    assert math.isclose(gate_regularization(gate, weights).item(), 0.095, rel_tol=1e-5)
