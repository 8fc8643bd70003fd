"""CFAM's shared cross-modal granularity decoder ``D_g`` (seed 004 §4.2, Eq. 3; §5.1).

``K`` learnable granularity queries (default 16, dim 512) attend to one modality's token embeddings
through a stack of transformer decoder layers (default 2 layers, 8 heads): self-attention among the
queries, cross-attention to the tokens, MLP. The same module (same queries and weights) decodes the
visual tokens ``V`` and the textual tokens ``W``, giving ``V̄, W̄ ∈ R^{B×K×dim}``.

Choice: when the backbone's token width differs from ``dim`` (the tiny test arch), a linear input
projection maps tokens to ``dim``; with CLIP ViT-B/16 (joint width 512) it is the identity. Padding
text positions are excluded from cross-attention through ``memory_key_padding_mask``.
"""

from __future__ import annotations

import torch
from torch import nn

MLP_RATIO = 4
QUERY_INIT_STD = 0.02


class GranularityDecoder(nn.Module):
    """``forward(tokens [B, N, in_dim], padding [B, N] bool | None) -> [B, K, dim]``."""

    def __init__(
        self, in_dim: int, dim: int = 512, num_queries: int = 16, depth: int = 2, heads: int = 8
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"granularity decoder dim {dim} not divisible by heads {heads}")
        self.queries = nn.Parameter(torch.randn(num_queries, dim) * QUERY_INIT_STD)
        self.input_proj: nn.Module = nn.Identity() if in_dim == dim else nn.Linear(in_dim, dim)
        layer = nn.TransformerDecoderLayer(
            d_model=dim,
            nhead=heads,
            dim_feedforward=MLP_RATIO * dim,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.decoder = nn.TransformerDecoder(layer, num_layers=depth, norm=nn.LayerNorm(dim))

    def forward(self, tokens: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        memory = self.input_proj(tokens)
        queries = self.queries.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        return self.decoder(queries, memory, memory_key_padding_mask=padding)
