"""Masked Caption Modeling decoder (seed 003 §3.2, Fig. 2, Algorithm 1 lines 9-14).

Each layer: multi-head self-attention over the (masked) caption's token features (Q_t, K_t, V_t),
then cross-attention whose keys/values are the image token features (K_i, V_i), then an MLP — i.e.
a non-causal :class:`torch.nn.TransformerDecoderLayer` (pre-LN). A final linear layer maps every text
position to the vocabulary; the loss is cross-entropy on the masked positions only (Eq. 11).

Loss normalization (declared; Eq. 11 sums −log P over the ``N`` masked tokens of *one* caption and
does not say how a batch is reduced): :func:`training.losses.mlm.mlm_loss` with its default
``reduction="token_mean"`` — the mean over all masked tokens of the batch, as IRRA's MLM — is what
``sew_mcm`` uses; ``reduction="caption_sum"`` is Eq. 11 literally (per-caption sum, mean over captions),
about ``N̄`` (mean masked tokens per caption) times larger, i.e. a rescaled λ2 of Eq. 12.

The decoder is a training-only head: methods never call it from ``encode_text``/``encode_image``, so
inference cost is that of the dual encoder (tested with forward hooks). The paper gives no depth or
head count; defaults here: depth 1 (``mcm_depth`` in the recipe), heads = width // 64 (≥ 1).
"""

from __future__ import annotations

import torch
from torch import nn

HEAD_WIDTH = 64
MLP_RATIO = 4


class McmDecoder(nn.Module):
    """``forward(text_tokens [B, L, D], image_tokens [B, T, D], text_padding [B, L] bool) -> logits [B, L, V]``."""

    def __init__(self, width: int, vocab_size: int, depth: int = 1, heads: int | None = None) -> None:
        super().__init__()
        heads = heads or max(1, width // HEAD_WIDTH)
        while width % heads:
            heads -= 1
        layer = nn.TransformerDecoderLayer(
            d_model=width,
            nhead=heads,
            dim_feedforward=MLP_RATIO * width,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.decoder = nn.TransformerDecoder(layer, num_layers=depth, norm=nn.LayerNorm(width))
        self.to_vocab = nn.Linear(width, vocab_size)

    def forward(
        self,
        text_tokens: torch.Tensor,
        image_tokens: torch.Tensor,
        text_padding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = self.decoder(text_tokens, image_tokens, tgt_key_padding_mask=text_padding)
        return self.to_vocab(x)
