"""Identity classification loss on both modalities (IRRA's ``id``): one shared classifier scores the
image and the text features; ``L_id = (CE(image_logits, y) + CE(text_logits, y)) / 2``."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def id_loss(image_logits: torch.Tensor, text_logits: torch.Tensor, person_ids: torch.Tensor) -> torch.Tensor:
    """Mean of the two cross-entropies over ``[B, num_classes]`` logits."""
    return (
        F.cross_entropy(image_logits.float(), person_ids) + F.cross_entropy(text_logits.float(), person_ids)
    ) / 2
