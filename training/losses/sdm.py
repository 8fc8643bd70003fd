"""Similarity distribution matching (IRRA; seed 002 §3.3, Eq. 5-7).

``p_i = softmax_j(cos(v_i, t_j) / τ)`` and the target ``q_i`` spreads mass uniformly over the
texts with the same identity (``q_ij = y_ij / Σ_b y_ib``). The loss is
``KL(p_i ‖ q_i) = Σ_j p_ij (log p_ij − log(q_ij + ε))`` averaged over the batch, for image→text and
text→image, summed (Eq. 7). ``ε`` keeps ``log q`` finite on negatives ("ε-smoothed labels").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_TEMPERATURE = 0.02
DEFAULT_EPSILON = 1e-8


def _direction(logits: torch.Tensor, target: torch.Tensor, epsilon: float) -> torch.Tensor:
    predicted = F.softmax(logits, dim=1)
    kl = predicted * (F.log_softmax(logits, dim=1) - torch.log(target + epsilon))
    return kl.sum(dim=1).mean()


def sdm_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    person_ids: torch.Tensor,
    temperature: float = DEFAULT_TEMPERATURE,
    epsilon: float = DEFAULT_EPSILON,
) -> torch.Tensor:
    """``L_sdm = L_i2t + L_t2i`` for ``[B, D]`` features (any scale; cosine is taken) and ``[B]`` ids."""
    if image_features.shape[0] != text_features.shape[0] or person_ids.shape[0] != image_features.shape[0]:
        raise ValueError("sdm_loss: image, text and person_ids need the same batch size")
    image = F.normalize(image_features.float(), dim=-1)
    text = F.normalize(text_features.float(), dim=-1)
    logits_i2t = image @ text.t() / temperature
    ids = person_ids.reshape(-1, 1)
    same = (ids == ids.t()).float()
    target = same / same.sum(dim=1, keepdim=True)
    return _direction(logits_i2t, target, epsilon) + _direction(logits_i2t.t(), target, epsilon)
