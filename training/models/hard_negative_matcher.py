"""CFAM's Matcher (seed 004 §4.3, §5.1): is a pair of granularity representations ``(V̄, W̄)`` matched?

2 transformer blocks (hidden 512, 8 heads) followed by an MLP with a sigmoid output. Choices (the paper
gives no more detail): the ``K`` visual and ``K`` textual query outputs are concatenated into one
``2K``-token sequence with a learned modality embedding added, encoded jointly (so the blocks can
compare the two modalities query by query), mean-pooled, and a 2-layer MLP gives one logit; the
sigmoid is applied inside the BCE-with-logits loss (numerically stable), ``probability()`` exposes it.
"""

from __future__ import annotations

import torch
from torch import nn

MLP_RATIO = 4


class HardNegativeMatcher(nn.Module):
    """``forward(v_bar [N, K, D], w_bar [N, K, D]) -> logits [N]``."""

    def __init__(self, dim: int = 512, depth: int = 2, heads: int = 8) -> None:
        super().__init__()
        self.modality = nn.Parameter(torch.zeros(2, dim))
        layer = nn.TransformerEncoderLayer(
            d_model=dim,
            nhead=heads,
            dim_feedforward=MLP_RATIO * dim,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=depth, norm=nn.LayerNorm(dim), enable_nested_tensor=False
        )
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, 1))

    def forward(self, v_bar: torch.Tensor, w_bar: torch.Tensor) -> torch.Tensor:
        x = torch.cat([v_bar + self.modality[0], w_bar + self.modality[1]], dim=1)
        return self.mlp(self.encoder(x).mean(dim=1)).squeeze(-1)

    def probability(self, v_bar: torch.Tensor, w_bar: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.forward(v_bar, w_bar))
