"""Seed 000 §3.2: the Bidirectional Decoupled Alignment Module (BDAM).

patch tokens f_i [B, L, D] → two-branch linear projection (f'_id, f'_clo) → a stack of self-attention
layers per branch → bidirectional cross-attention (identity queries attend to clothing tokens and vice
versa, both computed from the pre-exchange streams) → global average pooling (f̂_id, f̂_clo) → dimension
gate ``g = σ(W_g [f̂_id; f̂_clo] + b_g)``, ``f_id = g ⊙ f̂_id``, ``f_clo = (1 − g) ⊙ f̂_clo``.

Choices where the paper is silent: pre-norm Transformer encoder layers (GELU FFN 4×, dropout 0.1); the
"full depth" defaults to 6 layers per branch (the paper only says 3 layers is worse); one cross-attention
block (attention + FFN, residual) per direction; the gated identity *tokens* ``g ⊙ tokens_id`` are also
returned for the token-level fusion (``fusion.py``). The pooled pre-gate features ``f̂_id``/``f̂_clo`` are
returned too: Eq. 1 (``L_aln``) is written on ``f̂_clo``, Eq. 2 (HSIC) on the gated ``f_id^i``/``f_clo^i``. Ablations (seed 000 Table 1): ``cross_attention=False``,
``gate=False`` (f_id = f̂_id, f_clo = f̂_clo; ``gate`` is then reported as 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class BDAMOutput:
    tokens_id: torch.Tensor  # [B, L, D] identity-branch tokens, scaled by the gate
    f_id: torch.Tensor  # [B, D] gated identity feature f_id^i
    f_clo: torch.Tensor  # [B, D] gated clothing feature f_clo^i
    gate: torch.Tensor  # [B, D] dimension gate g (W_id = g, W_clo = 1 − g)
    h_id: torch.Tensor | None = None  # [B, D] pooled identity feature f̂_id (before the gate)
    h_clo: torch.Tensor | None = None  # [B, D] pooled clothing feature f̂_clo (before the gate; Eq. 1's feature)


def _encoder(dim: int, heads: int, depth: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout, activation="gelu", batch_first=True,
                                       norm_first=True)
    return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)


class CrossAttentionBlock(nn.Module):
    """``q + Attn(LN(q), LN(kv))`` then ``+ FFN(LN(·))``: one direction of the bidirectional exchange."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        kv_n = self.norm_kv(kv)
        x = q + self.drop(self.attn(self.norm_q(q), kv_n, kv_n, need_weights=False)[0])
        return x + self.drop(self.ff(self.norm_ff(x)))


class BDAM(nn.Module):
    """Identity/clothing decoupling of ViT patch tokens (seed 000 §3.2, Table 1 ablation switches)."""

    def __init__(
        self,
        dim: int,
        depth: int = 6,
        heads: int = 8,
        dropout: float = 0.1,
        cross_attention: bool = True,
        gate: bool = True,
    ) -> None:
        super().__init__()
        self.proj_id = nn.Linear(dim, dim)
        self.proj_clo = nn.Linear(dim, dim)
        self.self_id = _encoder(dim, heads, depth, dropout)
        self.self_clo = _encoder(dim, heads, depth, dropout)
        self.use_cross = cross_attention
        self.use_gate = gate
        if cross_attention:
            self.cross_id = CrossAttentionBlock(dim, heads, dropout)
            self.cross_clo = CrossAttentionBlock(dim, heads, dropout)
        self.norm_id = nn.LayerNorm(dim)
        self.norm_clo = nn.LayerNorm(dim)
        self.gate = nn.Linear(2 * dim, dim)

    def forward(self, tokens: torch.Tensor) -> BDAMOutput:
        t_id = self.self_id(self.proj_id(tokens))
        t_clo = self.self_clo(self.proj_clo(tokens))
        if self.use_cross:
            t_id, t_clo = self.cross_id(t_id, t_clo), self.cross_clo(t_clo, t_id)
        t_id, t_clo = self.norm_id(t_id), self.norm_clo(t_clo)
        h_id, h_clo = t_id.mean(dim=1), t_clo.mean(dim=1)
        if self.use_gate:
            g = torch.sigmoid(self.gate(torch.cat([h_id, h_clo], dim=-1)))
            return BDAMOutput(g[:, None, :] * t_id, g * h_id, (1 - g) * h_clo, g, h_id, h_clo)
        return BDAMOutput(t_id, h_id, h_clo, h_id.new_full(h_id.shape, 0.5), h_id, h_clo)
