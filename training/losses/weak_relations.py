"""Relation losses of weakly supervised dual-granularity identity association (seed 001 §3.2-3.4).

No identity label is used anywhere here: relations are inferred from features.

* LRC (Eqs. 3-10): :func:`local_relation_matrix` thresholds the intra-modal cosine matrices ``M^v``,
  ``M^t`` at ``th`` (0.7) and multiplies them (Hadamard) into ``M^{v,t}``; :func:`softened_targets`
  builds ``Q = I + λ(M^{v,t} − I)``, sets zeros to −∞ and row-softmaxes into ``q``;
  :func:`relation_kl_loss` is the SDM-style ``1/B Σ_i Σ_j p_ij log(p_ij / (q_ij + ε))`` with
  ``p = softmax(cos/τ)``. :func:`local_relation_loss` is Eq. 10, ``L_rc_b = L^v_rc_b + L^t_rc_b``.
  Eq. 9 gives the image→text term; the paper defines the text→image term only as "similarly". Our
  reading (declared): the same construction with the text as the anchor — row ``i`` is text ``i``,
  ``p^t = softmax_j(sim(f_i^t, f_j^v)/τ)`` and ``q^t`` is Eqs. 5-7 applied row-wise to the relation of
  text ``i`` with image ``j``, ``M^{t,v} = (M^{v,t})ᵀ`` (:func:`relation_targets`). ``q^t`` is then a
  distribution over images for every text. Transposing the image→text target (``qᵀ``) is not: its row
  ``i`` is column ``i`` of ``q``, whose entries carry the normalizers of different image rows, so it
  sums to 1 only when every row has the same relation count — for ``a~b``, ``b~c``, ``a≁c`` (a
  non-transitive batch) the rows of ``qᵀ`` sum to 0.897 / 1.207 / 0.897. Since ``M^v`` and ``M^t`` are
  symmetric, LRC's ``M^{v,t}`` is symmetric and ``q^t = q``.
* GSRC-FR (Eqs. 12-18): :func:`global_relations` selects, per batch image, its top-``k`` bank images
  with cosine > ``th`` (``J_i``); :func:`global_relation_loss` builds the columns
  ``[batch | selected bank entries]``, the target ``Q'`` (1 on the paired column, Eq. 14's adaptive
  weight ``1 − softmax_{k∈J'_i} sim(f_i^v, f_k^v)`` on the mined ones, −∞ elsewhere), ``q' =
  softmax(Q')`` over ``J'_i`` (Eq. 15) and the KL of Eq. 17 for text→image (bank images) and
  image→text (bank texts of the same samples), summed (Eq. 18).
* IASC-CL (Eq. 21): the same LRC loss (both directions as above) on the information-asymmetric pair
  features (see the method).

Choices (tested): relation targets are computed from detached features (they are targets, not a
path for gradients); ``J_i`` excludes bank rows of samples that are in the current batch (those are
already columns of the batch part, LRC relates them) and rows never filled; a row with no relation
besides its own pair gets the one-hot target on the pair ("empty relation row"); the selected bank
columns are the union over the batch of the ``J_i`` (each bank entry at most once).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

DEFAULT_THRESHOLD = 0.7
DEFAULT_SOFTENING = 0.5  # λ of Eq. 5 (the paper only says 0 < λ < 1)
DEFAULT_TOP_K = 10  # k of §3.3 (not given in the paper)
DEFAULT_TEMPERATURE = 0.02  # τ, seed 001 §4.2
DEFAULT_EPSILON = 1e-8


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).t()


def local_relation_matrix(
    image_features: torch.Tensor, text_features: torch.Tensor, threshold: float = DEFAULT_THRESHOLD
) -> torch.Tensor:
    """Eqs. 3-4: ``M^{v,t} = [M^v > th] ⊙ [M^t > th]`` (float 0/1, ``[B, B]``, from detached features)."""
    with torch.no_grad():
        mv = cosine_matrix(image_features, image_features) > threshold
        mt = cosine_matrix(text_features, text_features) > threshold
        relation = mv & mt
        relation |= torch.eye(relation.shape[0], dtype=torch.bool, device=relation.device)
    return relation.float()


def softened_targets(relation: torch.Tensor, softening: float = DEFAULT_SOFTENING) -> torch.Tensor:
    """Eqs. 5-7: ``Q = I + λ(M − I)``, zeros → −∞, row softmax. ``relation`` has ones on the diagonal."""
    if not 0.0 < softening < 1.0:
        raise ValueError(f"softening λ must lie in (0, 1), got {softening}")
    eye = torch.eye(relation.shape[0], relation.shape[1], device=relation.device)
    q = eye + softening * (relation - eye)
    q = q.masked_fill(q == 0, float("-inf"))
    return F.softmax(q, dim=1)


def relation_targets(
    relation: torch.Tensor, softening: float = DEFAULT_SOFTENING
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eqs. 5-7 for both directions of Eq. 10: (image→text ``q^v`` from ``M^{v,t}``, text→image ``q^t``
    from ``M^{t,v} = (M^{v,t})ᵀ``); both are row distributions (module docstring)."""
    return softened_targets(relation, softening), softened_targets(relation.t(), softening)


def relation_kl_loss(
    similarity: torch.Tensor,
    target: torch.Tensor,
    temperature: float = DEFAULT_TEMPERATURE,
    epsilon: float = DEFAULT_EPSILON,
) -> torch.Tensor:
    """Eq. 9/17: ``1/B Σ_i Σ_j p_ij log(p_ij/(q_ij + ε))`` with ``p = softmax(similarity/τ)`` row-wise."""
    logits = similarity.float() / temperature
    p = F.softmax(logits, dim=1)
    return (p * (F.log_softmax(logits, dim=1) - torch.log(target + epsilon))).sum(dim=1).mean()


def local_relation_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    relation: torch.Tensor,
    temperature: float = DEFAULT_TEMPERATURE,
    softening: float = DEFAULT_SOFTENING,
) -> torch.Tensor:
    """Eq. 10: ``L_rc_b = L^v + L^t`` from the 0/1 relation ``M^{v,t}`` (image ``i`` ~ text ``j``,
    ones on the diagonal): image→text against ``q^v``, text→image against ``q^t`` built from
    ``(M^{v,t})ᵀ`` (:func:`relation_targets`; the module docstring declares the reading)."""
    if relation.dim() != 2 or relation.shape[0] != relation.shape[1]:
        raise ValueError(f"relation must be a square [B, B] matrix, got {tuple(relation.shape)}")
    if not bool(((relation == 0) | (relation == 1)).all()):
        raise ValueError("local_relation_loss takes the 0/1 relation M^{v,t} (Eq. 4), not softened targets")
    target_v, target_t = relation_targets(relation, softening)
    sim = cosine_matrix(image_features, text_features)
    return relation_kl_loss(sim, target_v, temperature) + relation_kl_loss(sim.t(), target_t, temperature)


@dataclass(frozen=True)
class GlobalRelations:
    """Mined bank relations of one batch.

    ``columns``: the selected bank rows (unique, sorted) — extra columns after the ``B`` batch ones;
    ``related``: bool ``[B, B + S]``, ``J'_i`` (the paired batch column ``i`` plus mined bank columns);
    ``image_similarity``: ``sim(f_i^v, ·)`` over the same ``B + S`` columns (for Eq. 14)."""

    columns: torch.Tensor
    related: torch.Tensor
    image_similarity: torch.Tensor

    @property
    def mined(self) -> torch.Tensor:
        """Number of mined bank relations per batch row."""
        return self.related[:, self.related.shape[0] :].sum(dim=1)


@torch.no_grad()
def global_relations(
    image_features: torch.Tensor,
    bank_images: torch.Tensor,
    bank_filled: torch.Tensor,
    batch_rows: torch.Tensor,
    threshold: float = DEFAULT_THRESHOLD,
    top_k: int = DEFAULT_TOP_K,
) -> GlobalRelations:
    """Eq. 12: ``J_i`` = the top-``k`` bank images of batch image ``i`` with cosine > ``th``."""
    b = image_features.shape[0]
    device = image_features.device
    sim_bank = cosine_matrix(image_features, bank_images)  # M_m^v [B, N]
    usable = bank_filled.clone()
    usable[batch_rows] = False
    sim_bank = sim_bank.masked_fill(~usable.unsqueeze(0), float("-inf"))
    k = min(top_k, sim_bank.shape[1])
    top_values, top_index = sim_bank.topk(k, dim=1)
    keep = top_values > threshold
    selected = torch.zeros_like(sim_bank, dtype=torch.bool)
    selected.scatter_(1, top_index, keep)
    columns = selected.any(dim=0).nonzero().flatten()
    related = torch.cat(
        [torch.eye(b, dtype=torch.bool, device=device), selected[:, columns]], dim=1
    )
    batch_sim = cosine_matrix(image_features, image_features)
    image_similarity = torch.cat([batch_sim, cosine_matrix(image_features, bank_images[columns])], dim=1)
    return GlobalRelations(columns=columns, related=related, image_similarity=image_similarity)


def global_relation_targets(relations: GlobalRelations) -> torch.Tensor:
    """Eqs. 13-15: ``q'`` ``[B, B + S]``; paired column Q' = 1, mined ones Eq. 14, others −∞."""
    related = relations.related
    b = related.shape[0]
    weights = relations.image_similarity.masked_fill(~related, float("-inf"))
    adaptive = 1.0 - F.softmax(weights, dim=1)  # Eq. 14 (softmax over J'_i)
    q = torch.full(related.shape, float("-inf"), device=related.device)
    q = torch.where(related, adaptive, q)
    paired = torch.zeros_like(related)
    paired[:, :b] = torch.eye(b, dtype=torch.bool, device=related.device)
    q = torch.where(paired, torch.ones_like(q), q)
    return F.softmax(q, dim=1)


def global_relation_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    bank_images: torch.Tensor,
    bank_texts: torch.Tensor,
    relations: GlobalRelations,
    temperature: float = DEFAULT_TEMPERATURE,
) -> torch.Tensor:
    """Eq. 18: ``L_rc_g = L^v + L^t`` over batch + selected bank columns (bank features are constants)."""
    target = global_relation_targets(relations)
    columns = relations.columns
    s_text = torch.cat(
        [cosine_matrix(text_features, image_features), cosine_matrix(text_features, bank_images[columns])], dim=1
    )
    s_image = torch.cat(
        [cosine_matrix(image_features, text_features), cosine_matrix(image_features, bank_texts[columns])], dim=1
    )
    return relation_kl_loss(s_text, target, temperature) + relation_kl_loss(s_image, target, temperature)
