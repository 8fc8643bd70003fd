"""Noise-aware masking probabilities (seed 002 Eq. 3-4) and the token replacement of the official code.

* :func:`masking_probabilities`: ``r'_i = r_i − E_r + p`` with ``E_r`` the mean of ``r`` over the
  caption's word tokens (Eq. 3-4), clipped to [0, 1] (a probability), zero on other tokens. Before
  clipping the mean of ``r'`` over the word tokens is exactly ``p``; clipping can move it (a token
  with ``r'`` < 0 is never masked, one above 1 always), so the realised ratio is ≈ p, not = p.
* :func:`equal_masking_probabilities`: the EM ablation, ``p`` on every word token.
* :func:`sample_token_masking`: seed 002 §3.2 says only that a token is masked with probability
  ``r'_i`` (Eq. 4); it does not say what a masked token becomes. The BERT recipe used here comes from
  the official MLLM4Text-ReID code (``datasets/bases.py``, ``FilterDataset._build_random_masked_tokens_and_labels``),
  not from the paper: a selected token becomes [MASK] with probability 0.8, a random ordinary token
  (ids ``1 .. mask_token_id − 1``, never padding/special ids) with 0.1, and stays unchanged with 0.1.
  Deviation from that code (declared): it forces one [MASK] when no token was selected; we do not
  (a caption may stay unmasked, as Eq. 4's probabilities allow). The same uniform draws are used
  whatever the probabilities are, so EM and NAM with the same seeds differ only through the
  probabilities. Draws come from one generator per caption seeded by :func:`masking_seeds` (base
  seed, purpose, epoch, caption id), so the masks do not depend on batch composition, the number of
  DDP ranks or where a run was resumed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from training.losses.mlm import IGNORE_INDEX

DEFAULT_MASK_RATIO = 0.15
BERT_MASK_FRACTION = 0.8
BERT_RANDOM_FRACTION = 0.1
_SEED_MASK = (1 << 63) - 1


def masking_probabilities(
    noise: torch.Tensor, valid_mask: torch.Tensor, p: float = DEFAULT_MASK_RATIO
) -> torch.Tensor:
    """Eq. 3-4 per caption over its valid tokens, clipped to [0, 1], zero on invalid tokens. ``[B, L]``."""
    valid = valid_mask.bool()
    weights = valid.to(torch.float32)
    noise = noise.float()
    count = weights.sum(dim=-1, keepdim=True).clamp_min(1.0)
    expectation = (noise * weights).sum(dim=-1, keepdim=True) / count
    shifted = noise - expectation + p
    return shifted.clamp(0.0, 1.0) * weights


def equal_masking_probabilities(valid_mask: torch.Tensor, p: float = DEFAULT_MASK_RATIO) -> torch.Tensor:
    """EM baseline: probability ``p`` on every valid token."""
    return valid_mask.to(torch.float32) * p


def masking_seeds(caption_ids: torch.Tensor, epoch: int, base_seed: int, purpose: int = 0) -> list[int]:
    """One 63-bit seed per caption from (base seed, purpose, epoch, caption id); stable across processes."""
    return [
        hash((int(base_seed), int(purpose), int(epoch), int(c))) & _SEED_MASK for c in caption_ids.tolist()
    ]


@dataclass(frozen=True)
class MaskedTokens:
    """``tokens``: the masked caption; ``labels``: original id where selected, ``IGNORE_INDEX`` elsewhere."""

    tokens: torch.Tensor
    labels: torch.Tensor
    selected: torch.Tensor


def _draws(shape: tuple[int, int], seeds: list[int] | None, high: int) -> tuple[torch.Tensor, ...]:
    rows, length = shape
    if seeds is None:
        return torch.rand(shape), torch.rand(shape), torch.randint(1, high, shape)
    if len(seeds) != rows:
        raise ValueError(f"{len(seeds)} seeds for {rows} captions")
    select, kind, replacement = [], [], []
    generator = torch.Generator()
    for seed in seeds:
        generator.manual_seed(seed)
        select.append(torch.rand(length, generator=generator))
        kind.append(torch.rand(length, generator=generator))
        replacement.append(torch.randint(1, high, (length,), generator=generator))
    return torch.stack(select), torch.stack(kind), torch.stack(replacement)


def sample_token_masking(
    tokens: torch.Tensor,
    probabilities: torch.Tensor,
    mask_token_id: int,
    seeds: list[int] | None = None,
    mask_fraction: float = BERT_MASK_FRACTION,
    random_fraction: float = BERT_RANDOM_FRACTION,
) -> MaskedTokens:
    """Select token i with probability ``probabilities[b, i]`` and replace it BERT-style (see module doc).

    ``seeds`` (one per row, :func:`masking_seeds`) makes the draws per caption; ``None`` uses torch's
    global CPU generator. Tokens with probability 0 (padding, [SOS], [EOS]) are never selected.
    """
    if tokens.shape != probabilities.shape:
        raise ValueError(
            f"tokens {tuple(tokens.shape)} and probabilities {tuple(probabilities.shape)} differ"
        )
    if not 0.0 <= mask_fraction + random_fraction <= 1.0:
        raise ValueError("mask_fraction + random_fraction must lie in [0, 1]")
    select_u, kind_u, replacement = (
        t.to(tokens.device) for t in _draws(tuple(tokens.shape), seeds, mask_token_id)
    )
    selected = select_u < probabilities
    to_mask = selected & (kind_u < mask_fraction)
    to_random = selected & (kind_u >= mask_fraction) & (kind_u < mask_fraction + random_fraction)
    masked = torch.where(to_mask, torch.full_like(tokens, mask_token_id), tokens)
    masked = torch.where(to_random, replacement.to(tokens.dtype), masked)
    labels = torch.where(selected, tokens, torch.full_like(tokens, IGNORE_INDEX))
    return MaskedTokens(tokens=masked, labels=labels, selected=selected)
