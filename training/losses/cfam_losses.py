"""CFAM losses (seed 004 §4.2-4.4, Eqs. 4-6).

* :func:`local_similarity` — Eq. 4: ``Sim(V, W) = 1/K Σ_k cos(v̄_k, w̄_k)`` for every image-text pair of a
  batch (``[B, B]``).
* :func:`sdm_loss_from_similarity` — the SDM loss (IRRA; as :func:`training.losses.sdm.sdm_loss`) on a
  precomputed cosine-similarity matrix, used for ``L_ls`` on the local similarities.
* :func:`hard_negative_indices` — §4.3: per image the most similar unpaired text, per text the most
  similar unpaired image.
* :func:`matching_loss` — Eq. 5 as binary cross-entropy over the ``B`` positive and ``2B`` negative pairs.

Choices: hard negatives are mined on the (detached) *global* similarities, the way ALBEF-style matchers
do; "unpaired" excludes every candidate with the anchor's identity when ``person_ids`` are given (a
same-identity text is not a negative), and an anchor without any other-identity candidate contributes
no negative (its slot is masked out of the BCE mean). Eq. 5 is printed with ``(1 − log p)``; we use the
standard BCE ``−[ŷ log p + (1 − ŷ) log(1 − p)]`` that the text describes, averaged over the pairs used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.losses.sdm import DEFAULT_EPSILON, DEFAULT_TEMPERATURE


def local_similarity(v_bar: torch.Tensor, w_bar: torch.Tensor) -> torch.Tensor:
    """Eq. 4 for all pairs: ``[B_v, K, D] × [B_t, K, D] → [B_v, B_t]`` mean over queries of cosines."""
    if v_bar.shape[1:] != w_bar.shape[1:]:
        raise ValueError(f"local_similarity: shapes {tuple(v_bar.shape)} and {tuple(w_bar.shape)} differ")
    v = F.normalize(v_bar.float(), dim=-1)
    w = F.normalize(w_bar.float(), dim=-1)
    return torch.einsum("ikd,jkd->ij", v, w) / v.shape[1]


def _kl_rows(logits: torch.Tensor, target: torch.Tensor, epsilon: float) -> torch.Tensor:
    predicted = F.softmax(logits, dim=1)
    return (predicted * (F.log_softmax(logits, dim=1) - torch.log(target + epsilon))).sum(dim=1).mean()


def sdm_loss_from_similarity(
    similarity: torch.Tensor,
    person_ids: torch.Tensor,
    temperature: float = DEFAULT_TEMPERATURE,
    epsilon: float = DEFAULT_EPSILON,
) -> torch.Tensor:
    """SDM (both directions summed) on an image×text cosine-similarity matrix ``[B, B]``."""
    ids = person_ids.reshape(-1, 1)
    same = (ids == ids.t()).float()
    target = same / same.sum(dim=1, keepdim=True)
    logits = similarity.float() / temperature
    return _kl_rows(logits, target, epsilon) + _kl_rows(logits.t(), target.t(), epsilon)


def hard_negative_indices(
    similarity: torch.Tensor, person_ids: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(text_for_image, image_for_text, image_valid, text_valid)`` from an image×text similarity.

    ``text_for_image[i]`` is the most similar text ``j ≠ i`` (of another identity when ids are given);
    ``image_valid[i]`` is False when no such text exists (and likewise for texts)."""
    sim = similarity.detach().float()
    n = sim.shape[0]
    allowed = ~torch.eye(n, dtype=torch.bool, device=sim.device)
    if person_ids is not None:
        ids = person_ids.reshape(-1, 1)
        allowed &= ids != ids.t()
    masked = sim.masked_fill(~allowed, float("-inf"))
    text_for_image = masked.argmax(dim=1)
    image_for_text = masked.argmax(dim=0)
    return text_for_image, image_for_text, allowed.any(dim=1), allowed.any(dim=0)


def matching_loss(logits: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 5: mean binary cross-entropy of matcher logits vs. ``labels`` (1 matched, 0 not) over ``valid``."""
    losses = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none")
    if valid is None:
        return losses.mean()
    weights = valid.float()
    return (losses * weights).sum() / weights.sum().clamp_min(1.0)
