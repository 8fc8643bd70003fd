"""Token noise levels of seed 002 §3.2, Eq. 1-2.

``S = F_t F_vᵀ`` is the cosine similarity between the layer-l embeddings of the caption's text
tokens and of the image's patch tokens (the [CLS] token is not a patch and is excluded), and
``r_i = 1 − max_j s_ij``: a word that matches no image region gets a high noise level.
Only word tokens are scored (``valid_mask``: not padding, [SOS] or [EOS]); ``r`` is 0 elsewhere.
Computed without gradient (the caller wraps it in ``torch.no_grad``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def token_similarity(text_tokens: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
    """Eq. 1: cosine similarities ``[B, N, M]`` between ``[B, N, d]`` text and ``[B, M, d]`` image tokens."""
    text = F.normalize(text_tokens.float(), dim=-1)
    image = F.normalize(image_tokens.float(), dim=-1)
    return text @ image.transpose(1, 2)


def token_noise(
    text_tokens: torch.Tensor, image_patch_tokens: torch.Tensor, valid_mask: torch.Tensor
) -> torch.Tensor:
    """Eq. 2: ``r = 1 − max_j s_ij`` per text token ``[B, N]`` (float32, zero on invalid tokens)."""
    if text_tokens.shape[0] != image_patch_tokens.shape[0]:
        raise ValueError("token_noise: text and image batches differ in size")
    best = token_similarity(text_tokens, image_patch_tokens).max(dim=-1).values
    return (1.0 - best) * valid_mask.to(best.dtype)
