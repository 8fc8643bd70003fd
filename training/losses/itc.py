"""Image-text contrastive loss (CLIP InfoNCE, as IRRA's ``itc``): the i-th image matches the i-th text.

``L_itc = (CE(s/τ, diag) + CE(sᵀ/τ, diag)) / 2`` with cosine similarities ``s``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.losses.sdm import DEFAULT_TEMPERATURE


def itc_loss(
    image_features: torch.Tensor, text_features: torch.Tensor, temperature: float = DEFAULT_TEMPERATURE
) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of ``[B, D]`` matched pairs."""
    image = F.normalize(image_features.float(), dim=-1)
    text = F.normalize(text_features.float(), dim=-1)
    logits = image @ text.t() / temperature
    targets = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2
