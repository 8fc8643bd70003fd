"""Patch-grid geometry and position-embedding interpolation for a ViT at a new size/stride, and the
extension of CLIP's text position embeddings to a longer context.

IRRA and seed 002 (§4.2) run CLIP ViT-B/16 at 384×128: the 14×14 grid of learned position
embeddings is resized (bicubic, class token kept) to the new grid. With ``stride < patch`` the
patch embedding overlaps and the grid is ``(H - P) // S + 1`` × ``(W - P) // S + 1``.

Text (:func:`extend_text_position_embedding`): CFAM trains with 168 text tokens (seed 004 §5.1) from a
CLIP checkpoint that has 77 learned text positions; the paper does not say how the extra positions are
made. Reading (declared): Long-CLIP's "knowledge-preserving stretching" (Zhang et al. 2024) — the first
``keep`` = 20 positions, which CLIP trained well (most captions are short), are copied unchanged, and the
remaining 57 are linearly interpolated (end points kept) onto the remaining ``new_length − 20`` positions.
A caption of ≤ 20 tokens is therefore encoded exactly as by the checkpoint; longer ones see a smoothly
stretched position code instead of untrained rows.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def patch_grid(image_size: tuple[int, int], patch_size: int, stride: int) -> tuple[int, int]:
    """Number of patch rows and columns for a ``patch_size`` convolution with ``stride``."""
    h, w = image_size
    if patch_size > h or patch_size > w:
        raise ValueError(f"patch size {patch_size} larger than image {image_size}")
    return (h - patch_size) // stride + 1, (w - patch_size) // stride + 1


def square_grid(num_patches: int) -> tuple[int, int]:
    """The grid of a square checkpoint (e.g. 14×14 for CLIP ViT-B/16 at 224); error otherwise."""
    side = math.isqrt(num_patches)
    if side * side != num_patches:
        raise ValueError(
            f"cannot infer the patch grid of {num_patches} position embeddings (not a square grid)"
        )
    return side, side


def interpolate_position_embedding(
    pos_embed: torch.Tensor,
    old_grid: tuple[int, int],
    new_grid: tuple[int, int],
    num_prefix_tokens: int = 1,
) -> torch.Tensor:
    """Resize ``[prefix + gh*gw, D]`` position embeddings to ``new_grid`` (bicubic, prefix kept)."""
    if pos_embed.shape[0] != num_prefix_tokens + old_grid[0] * old_grid[1]:
        raise ValueError(
            f"position embedding has {pos_embed.shape[0]} rows, expected "
            f"{num_prefix_tokens} + {old_grid[0]}x{old_grid[1]}"
        )
    if tuple(old_grid) == tuple(new_grid):
        return pos_embed.clone()
    prefix, grid = pos_embed[:num_prefix_tokens], pos_embed[num_prefix_tokens:]
    dim = grid.shape[-1]
    grid = grid.reshape(1, old_grid[0], old_grid[1], dim).permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=tuple(new_grid), mode="bicubic", align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(new_grid[0] * new_grid[1], dim).to(pos_embed.dtype)
    return torch.cat([prefix, grid], dim=0)


TEXT_KEEP_POSITIONS = 20


def extend_text_position_embedding(
    pos_embed: torch.Tensor, new_length: int, keep: int = TEXT_KEEP_POSITIONS
) -> torch.Tensor:
    """``[L, D]`` text position embeddings → ``[new_length, D]``: rows ``< keep`` copied, the rest linearly
    stretched (module docstring). ``new_length <= L`` truncates (the first ``new_length`` rows)."""
    length = pos_embed.shape[0]
    if new_length <= length:
        return pos_embed[:new_length].clone()
    keep = max(0, min(keep, length - 1))
    head, tail = pos_embed[:keep], pos_embed[keep:]
    tail = tail.float().T.unsqueeze(0)  # [1, D, L - keep]
    stretched = F.interpolate(tail, size=new_length - keep, mode="linear", align_corners=True)
    return torch.cat([head, stretched[0].T.to(pos_embed.dtype)], dim=0)
