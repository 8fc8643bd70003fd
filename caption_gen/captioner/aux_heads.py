"""Auxiliary attribute heads on the projected image tokens (training only; the saved model is a plain LLaVA).

Both map the tokens ``(batch, tokens, dim)`` to one logit vector per attribute of
:data:`caption_gen.captioner.examples.AUX_ATTRIBUTES`:

* ``linear`` — one linear layer over the flattened tokens: the attribute may be spread over any tokens in
  any way, which a linear read-out decodes but the language model, reading through attention heads (a
  weighted average of tokens per head), may not;
* ``attention`` — per attribute a learned query attends over the tokens (one softmax-weighted average, the
  way an attention head of the language model reads them), then a linear classifier: the tower is trained
  to put each attribute where one attention read finds it.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import nn

AuxHeadKind = Literal["linear", "attention"]


class LinearAuxHead(nn.Module):
    def __init__(self, n_tokens: int, dim: int, sizes: list[int]):
        super().__init__()
        self.sizes = list(sizes)
        self.linear = nn.Linear(n_tokens * dim, sum(sizes))

    def forward(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        return list(self.linear(tokens.reshape(len(tokens), -1)).split(self.sizes, dim=-1))


class AttentionAuxHead(nn.Module):
    def __init__(self, dim: int, sizes: list[int]):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(len(sizes), dim) / math.sqrt(dim))
        self.keys = nn.Linear(dim, dim, bias=False)
        self.values = nn.Linear(dim, dim, bias=False)
        self.classifiers = nn.ModuleList(nn.Linear(dim, n) for n in sizes)

    def forward(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        scores = torch.einsum("ad,btd->bat", self.queries, self.keys(tokens)) / math.sqrt(tokens.shape[-1])
        pooled = torch.einsum("bat,btd->bad", scores.softmax(dim=-1), self.values(tokens))
        return [head(pooled[:, a]) for a, head in enumerate(self.classifiers)]


def build_aux_head(kind: AuxHeadKind, n_tokens: int, dim: int, sizes: list[int]) -> Any:
    if kind == "linear":
        return LinearAuxHead(n_tokens, dim, sizes)
    if kind == "attention":
        return AttentionAuxHead(dim, sizes)
    raise ValueError(f"aux_head must be 'linear' or 'attention', got {kind!r}")
