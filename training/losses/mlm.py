"""Masked language / caption modelling loss (IRRA's ``mlm``, seed 003's MCM): cross-entropy over the
masked positions only.

Labels hold the original token id at masked positions and ``IGNORE_INDEX`` (−100) elsewhere.
(IRRA marks unmasked positions with 0, which is also CLIP's id of "!"; −100 avoids that clash.)
With no masked position in the batch the loss is an exact zero that still depends on the logits,
so every parameter keeps a (zero) gradient under DDP.

Normalization (``reduction``), declared because seed 003 Eq. 11 leaves it open:

* ``token_mean`` (default): the mean of −log P over every masked token of the batch — IRRA's MLM
  (``F.cross_entropy`` over the flattened batch) and the BERT convention. The loss scale does not
  depend on caption length or mask ratio.
* ``caption_sum``: Eq. 11 read literally, ``L_mcm = −Σ_{n=1}^{N} log P(t_n | ...)`` with ``N`` the
  masked tokens *of one caption*, then averaged over the captions of the batch (the batch reduction
  is not given in the paper; the mean over captions is our reading). It is about ``N̄`` times the
  ``token_mean`` value (``N̄`` = mean masked tokens per caption, ≈ mask ratio × caption length, e.g.
  ≈ 2 at 10 % of ~20 words), so it weights long captions more and acts as a larger λ2 (Eq. 12).
  Captions with no masked token contribute 0 and still count in the mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


MLM_REDUCTIONS = ("token_mean", "caption_sum")


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "token_mean") -> torch.Tensor:
    """``logits [B, L, V]`` (or ``[N, V]``), ``labels [B, L]`` (or ``[N]``) → CE over masked tokens,
    reduced as ``reduction`` says (module docstring; ``caption_sum`` needs ``[B, L]`` labels)."""
    if reduction not in MLM_REDUCTIONS:
        raise ValueError(f"mlm_loss reduction must be one of {MLM_REDUCTIONS}, got {reduction!r}")
    flat_logits = logits.float().reshape(-1, logits.shape[-1])
    flat_labels = labels.reshape(-1)
    if not bool((flat_labels != IGNORE_INDEX).any()):
        return flat_logits.sum() * 0.0
    if reduction == "token_mean":
        return F.cross_entropy(flat_logits, flat_labels, ignore_index=IGNORE_INDEX)
    if labels.dim() != 2:
        raise ValueError("mlm_loss(reduction='caption_sum') needs labels shaped [B, L]")
    per_token = F.cross_entropy(flat_logits, flat_labels, ignore_index=IGNORE_INDEX, reduction="none")
    return per_token.reshape(labels.shape).sum(dim=1).mean()


def mlm_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Fraction of masked tokens predicted exactly (a logged scalar, not a loss)."""
    flat_labels = labels.reshape(-1)
    selected = flat_labels != IGNORE_INDEX
    if not bool(selected.any()):
        return torch.zeros((), device=logits.device)
    predicted = logits.reshape(-1, logits.shape[-1]).argmax(dim=-1)
    return (predicted[selected] == flat_labels[selected]).float().mean()
