"""Sew calibration loss (seed 003 §3.1, Eqs. 5-10, 12).

For one retrieval direction with anchors ``a`` (e.g. image CLS) and candidates ``b`` (text CLS), both
L2-normalized, ``s_ij = ā_i·b̄_j`` and per-anchor margin ``M_i``:

* pull (Eq. 5): ``log[1 + Σ_{k∈P_i} exp(α(s_ik − s_ii + M_i))]`` with ``P_i`` = same identity, ``k ≠ i``
  (the perfect pair ``(i, i)`` must be closer than every other positive, constraint (1)).
* push (Eq. 6): ``log[1 + Σ_{k∈P_i⁺} Σ_{j∈N_i} exp(α(s_ij − s_ik + M_i))]`` with ``N_i`` = other
  identities.
* identity part (Eqs. 8-9): the anchor is projected onto the normalized paired candidate,
  ``â_i = (ā_iᵀ b̄_i)·b̄_i``, scored against normalized class weights ``ω̄_c`` (``s_c,i = ω̄_cᵀ â_i``);
  cross-entropy of ``α(s_{y_i,i} − M_i)`` against ``α s_{c,i}`` (c ≠ y_i), a CosFace-style margin.
* ``M_i`` (Eq. 10): linear in the caption length between ``T_min`` and ``T_max`` from ``M_min`` to
  ``M_max``; ``M_1 = M_2 = M_i`` as the paper sets.

Choices where the paper is ambiguous (each is tested in ``tests/training/plugins/test_sew_losses.py``):

1. **Push positives include the paired sample** (``P_i⁺ = P_i ∪ {i}``). Eq. 6 reuses the ``K``
   positives of Eq. 5 (``i ≠ k``); read literally, a batch with all-distinct identities (the usual
   case for a caption corpus) would have no push term at all, while constraint (2) is stated for the
   anchor pair too ("A_img ... P_txt ... N_txt"). With repeated identities the literal terms are a
   subset of ours.
2. **The projection uses the normalized anchor** (``ā_i``, not the raw ``v_i^c``), so every score is a
   product of cosines in ``[−1, 1]`` and the margins 0.4-0.6 and scale α = 32 live on the same cosine
   scale as in Eqs. 5-6. (Normalizing ``â_i`` itself would leave only the sign of ``ā_iᵀ b̄_i``.)
3. **Eq. 8's denominator** sums ``exp(α s_{c,i})`` over every class ``c ≠ y_i`` (the printed
   ``s_{y_j,i}`` index is read as a class index); one classifier ``ω`` is shared by both directions.
4. **Lengths outside ``[T_min, T_max]`` are clamped**, so ``M_i`` stays within ``[M_min, M_max]``.
5. The sum over anchors is averaged over the batch (Eq. 8 has ``1/n``; Eqs. 5-6 are per anchor).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_SCALE = 32.0  # α, seed 003 §4.2
DEFAULT_MARGIN_MIN = 0.4
DEFAULT_MARGIN_MAX = 0.6


def length_adaptive_margin(
    lengths: torch.Tensor,
    t_min: float,
    t_max: float,
    m_min: float = DEFAULT_MARGIN_MIN,
    m_max: float = DEFAULT_MARGIN_MAX,
) -> torch.Tensor:
    """Eq. 10: ``M_i = M_min + (M_max − M_min)(T_i − T_min)/(T_max − T_min)``, lengths clamped to the bounds."""
    if t_max <= t_min:
        raise ValueError(f"t_max ({t_max}) must exceed t_min ({t_min})")
    clamped = lengths.float().clamp(t_min, t_max)
    return m_min + (m_max - m_min) * (clamped - t_min) / (t_max - t_min)


def sew_match_loss(
    anchors: torch.Tensor,
    candidates: torch.Tensor,
    person_ids: torch.Tensor,
    margins: torch.Tensor,
    scale: float = DEFAULT_SCALE,
) -> torch.Tensor:
    """``L_match = L_pull + L_push`` (Eqs. 5-7) for anchors→candidates, mean over anchors."""
    a = F.normalize(anchors.float(), dim=-1)
    b = F.normalize(candidates.float(), dim=-1)
    sim = a @ b.t()  # [B, B]
    n = sim.shape[0]
    ids = person_ids.reshape(-1, 1)
    same = ids == ids.t()
    eye = torch.eye(n, dtype=torch.bool, device=sim.device)
    positives = same & ~eye
    negatives = ~same
    margins = margins.float().reshape(-1, 1)
    diag = sim.diagonal().reshape(-1, 1)
    pull_terms = scale * (sim - diag + margins)  # [i, k]
    pull = _log1p_sum_exp(pull_terms, positives)
    # push: exp(α(s_ij − s_ik + M_i)) for k ∈ P_i ∪ {i}, j ∈ N_i  →  [i, k, j]
    push_terms = scale * (sim[:, None, :] - sim[:, :, None] + margins[:, :, None])
    push_mask = same[:, :, None] & negatives[:, None, :]
    push = _log1p_sum_exp(push_terms.reshape(n, -1), push_mask.reshape(n, -1))
    return (pull + push).mean()


def _log1p_sum_exp(terms: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Row-wise ``log(1 + Σ_{mask} exp(terms))`` computed stably (an empty row gives exactly 0)."""
    zeros = torch.zeros(terms.shape[0], 1, dtype=terms.dtype, device=terms.device)
    masked = terms.masked_fill(~mask, float("-inf"))
    return torch.logsumexp(torch.cat([zeros, masked], dim=1), dim=1)


def sew_id_loss(
    anchors: torch.Tensor,
    paired: torch.Tensor,
    class_weights: torch.Tensor,
    person_ids: torch.Tensor,
    margins: torch.Tensor,
    scale: float = DEFAULT_SCALE,
) -> torch.Tensor:
    """Eqs. 8-9: margin identity classification of the anchor projected onto its normalized pair."""
    a = F.normalize(anchors.float(), dim=-1)
    b = F.normalize(paired.float(), dim=-1)
    projected = (a * b).sum(dim=-1, keepdim=True) * b  # â_i = (ā_iᵀ b̄_i) b̄_i
    scores = projected @ F.normalize(class_weights.float(), dim=-1).t()  # [B, C]
    target = F.one_hot(person_ids, scores.shape[1]).to(scores.dtype)
    logits = scale * (scores - target * margins.float().reshape(-1, 1))
    return F.cross_entropy(logits, person_ids)


def sew_calibration_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    person_ids: torch.Tensor,
    margins: torch.Tensor,
    class_weights: torch.Tensor | None,
    scale: float = DEFAULT_SCALE,
) -> dict[str, torch.Tensor]:
    """``L_sew`` parts (Eq. 12): ``match`` = I2T + T2I matching, ``id`` = I2T + T2I identity (if weights)."""
    out = {
        "match": sew_match_loss(image_features, text_features, person_ids, margins, scale)
        + sew_match_loss(text_features, image_features, person_ids, margins, scale)
    }
    if class_weights is not None:
        out["id"] = sew_id_loss(image_features, text_features, class_weights, person_ids, margins, scale) + (
            sew_id_loss(text_features, image_features, class_weights, person_ids, margins, scale)
        )
    return out
