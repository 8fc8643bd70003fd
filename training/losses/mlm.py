"""Masked language modelling loss (IRRA's ``mlm``): cross-entropy over the masked positions only.

Labels hold the original token id at masked positions and ``IGNORE_INDEX`` (−100) elsewhere.
(IRRA marks unmasked positions with 0, which is also CLIP's id of "!"; −100 avoids that clash.)
With no masked position in the batch the loss is an exact zero that still depends on the logits,
so every parameter keeps a (zero) gradient under DDP.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``logits [B, L, V]`` (or ``[N, V]``), ``labels [B, L]`` (or ``[N]``) → mean CE over masked tokens."""
    flat_logits = logits.float().reshape(-1, logits.shape[-1])
    flat_labels = labels.reshape(-1)
    if not bool((flat_labels != IGNORE_INDEX).any()):
        return flat_logits.sum() * 0.0
    return F.cross_entropy(flat_logits, flat_labels, ignore_index=IGNORE_INDEX)


def mlm_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Fraction of masked tokens predicted exactly (a logged scalar, not a loss)."""
    flat_labels = labels.reshape(-1)
    selected = flat_labels != IGNORE_INDEX
    if not bool(selected.any()):
        return torch.zeros((), device=logits.device)
    predicted = logits.reshape(-1, logits.shape[-1]).argmax(dim=-1)
    return (predicted[selected] == flat_labels[selected]).float().mean()
