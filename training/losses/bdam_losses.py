"""Seed 000 §3.2 and §3.5 losses of BDAM.

* :func:`hsic` — Eq. 2, linear kernels ``K = f fᵀ``, centring ``H = I − 11ᵀ/N``, scaled by ``1/(N−1)²``.
* :func:`info_nce` — Eq. 1 (clothing alignment, ``L_aln``) and Eq. 3 (fused vs text): rows are anchors,
  the diagonal holds the positives, features are L2-normalised (``s_ij`` = cosine), temperature τ.
* :func:`triplet_loss` — Eq. 4 with squared Euclidean distances; batch-hard mining over a PK batch (for every
  anchor the farthest positive and the closest negative; Hermans et al. 2017) — our choice, the paper's
  expectation over (a, p, n) does not say how triplets are drawn.
* :func:`gate_regularization` — the paper names a "gate regularization" term (§4.2, Table 3) without
  defining it. Ours keeps both gates away from collapse: ``mean_b (mean_d g_bd − ½)² + mean_b (W_img,b − ½)²``.
  **Conflict (declared):** it pulls the identity gate towards ½, while Fig. 4 reports learned identity gates
  skewed right (mean 0.61 ± 0.17; fusion weights 0.52 / 0.48). The BDAM method therefore leaves it off by
  default (``gate_reg_weight: 0``); it is an opt-in ablation, not the paper's term.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def hsic(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``HSIC(x, y) = tr(K_x H K_y H) / (N − 1)²`` with linear kernels (seed 000 Eq. 2); x, y: [N, D]."""
    if x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise ValueError(f"hsic needs the same N ≥ 2 rows, got {tuple(x.shape)} and {tuple(y.shape)}")
    n = x.shape[0]
    # tr(K_x H K_y H) = ‖(H x)ᵀ (H y)‖_F² for linear kernels: centre the features instead of building N × N.
    xc = x.float() - x.float().mean(dim=0, keepdim=True)
    yc = y.float() - y.float().mean(dim=0, keepdim=True)
    return (xc.T @ yc).pow(2).sum() / (n - 1) ** 2


def info_nce(anchors: torch.Tensor, positives: torch.Tensor, temperature: float,
             labels: torch.Tensor | None = None) -> torch.Tensor:
    """``−E_i log softmax_j(s_ij / τ)_i`` with ``s_ij = â_i · p̂_j`` (L2-normalised; seed 000 Eq. 1 / Eq. 3).

    ``labels`` [N] (optional): every column whose label equals the anchor's is a positive; the target is then
    uniform over those columns, ``−E_i Σ_j q_ij log softmax_j(s_ij / τ)`` with ``q_ij = 1[y_i = y_j] / n_i``.
    Without labels only the diagonal is positive, so a PK batch would treat the other images of the same
    person (or the same outfit) as negatives — it is only correct when all rows are distinct instances."""
    logits = F.normalize(anchors.float(), dim=-1) @ F.normalize(positives.float(), dim=-1).T / temperature
    if labels is None:
        return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))
    same = (labels[:, None] == labels[None, :]).float()
    target = same / same.sum(dim=1, keepdim=True)
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def candidate_info_nce(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """Eq. 3 over candidate lists: ``scores`` [B, 1 + K] cosine scores whose column 0 is the positive."""
    target = torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device)
    return F.cross_entropy(scores.float() / temperature, target)


def triplet_loss(features: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Eq. 4, batch-hard: ``mean_a max(max_p ‖f_a − f_p‖² − min_n ‖f_a − f_n‖² + m, 0)``.

    Anchors without a positive or without a negative in the batch are skipped (0 if none is valid)."""
    f = features.float()
    dist = torch.cdist(f, f).pow(2)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos_mask, neg_mask = same & ~eye, ~same
    valid = pos_mask.any(1) & neg_mask.any(1)
    if not valid.any():
        return f.sum() * 0.0
    hardest_pos = dist.masked_fill(~pos_mask, float("-inf")).amax(1)
    hardest_neg = dist.masked_fill(~neg_mask, float("inf")).amin(1)
    return F.relu(hardest_pos - hardest_neg + margin)[valid].mean()


def gate_regularization(gate: torch.Tensor, modality_weights: torch.Tensor | None = None) -> torch.Tensor:
    """``mean_b (mean_d g_bd − ½)²`` (+ ``mean_b (W_img − ½)²`` when the fusion weights are given)."""
    loss = (gate.float().mean(dim=1) - 0.5).pow(2).mean()
    if modality_weights is not None:
        loss = loss + (modality_weights[:, 0].float() - 0.5).pow(2).mean()
    return loss
