"""IRRA-style cross-modal transformer and MLM head (used by the ``irra`` method and NAM's optional MLM).

Structure (IRRA, "Cross-Modal Implicit Relation Reasoning", CVPR 2023): text tokens attend to image
tokens through one cross-attention layer (pre-LN on queries and keys/values), followed by a stack
of self-attention residual blocks (open_clip's :class:`~open_clip.transformer.Transformer`) and a
final LayerNorm; the MLM head (dense → QuickGELU → LayerNorm → vocabulary logits) predicts the
masked text tokens. Heads = ``width // 64`` (at least 1), as in IRRA; init follows CLIP's scheme.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from open_clip.transformer import LayerNorm, QuickGELU, Transformer
from torch import nn

HEAD_WIDTH = 64


class CrossModalEncoder(nn.Module):
    """``forward(text_tokens [B, L, D], image_tokens [B, T, D]) -> [B, L, D]``."""

    def __init__(self, width: int, depth: int = 4) -> None:
        super().__init__()
        heads = max(1, width // HEAD_WIDTH)
        while width % heads:
            heads -= 1
        self.width = width
        self.cross_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.transformer = Transformer(width=width, layers=depth, heads=heads)
        self.ln_pre_text = LayerNorm(width)
        self.ln_pre_image = LayerNorm(width)
        self.ln_post = LayerNorm(width)
        scale = width**-0.5
        proj_std = scale * (2 * depth) ** -0.5
        fc_std = (2 * width) ** -0.5
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=scale)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.cross_attn.in_proj_weight, std=scale)
        nn.init.normal_(self.cross_attn.out_proj.weight, std=proj_std)

    def forward(self, text_tokens: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        image = self.ln_pre_image(image_tokens)
        x = self.cross_attn(self.ln_pre_text(text_tokens), image, image, need_weights=False)[0]
        x = self.transformer(x)
        return self.ln_post(x)


class MlmHead(nn.Module):
    """Vocabulary logits ``[B, L, V]`` for each cross-modal text token."""

    def __init__(self, width: int, vocab_size: int, depth_for_init: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(
            OrderedDict(
                [
                    ("dense", nn.Linear(width, width)),
                    ("gelu", QuickGELU()),
                    ("ln", LayerNorm(width)),
                    ("fc", nn.Linear(width, vocab_size)),
                ]
            )
        )
        nn.init.normal_(self.net.dense.weight, std=(2 * width) ** -0.5)
        nn.init.normal_(self.net.fc.weight, std=width**-0.5 * (2 * depth_for_init) ** -0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
