"""Patch-grid geometry and position-embedding interpolation for a ViT at a new size/stride.

IRRA and seed 002 (§4.2) run CLIP ViT-B/16 at 384×128: the 14×14 grid of learned position
embeddings is resized (bicubic, class token kept) to the new grid. With ``stride < patch`` the
patch embedding overlaps and the grid is ``(H - P) // S + 1`` × ``(W - P) // S + 1``.
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
