"""CLIP BPE tokenization (seed 002 §4.2: at most 77 tokens including [SOS] and [EOS]).

Wraps open_clip's :class:`~open_clip.tokenizer.SimpleTokenizer` (the BPE vocabulary ships inside
open_clip, no network). Output rows are ``[SOS] tokens... [EOS] 0 0 ...``; captions longer than the
context are truncated with [EOS] kept as the last token.

Mask token (choice, as IRRA does): CLIP's 49,408-entry vocabulary has no [MASK]. We retire the
last BPE merge (id ``sot_token_id - 1``, a rare word piece) so the tokenizer never produces it, and
use that id as ``mask_token_id``. The vocabulary size, and therefore compatibility with CLIP
checkpoints, is unchanged.
"""

from __future__ import annotations

import torch
from open_clip.tokenizer import SimpleTokenizer

MASK_TOKEN = "<|mask|>"


class ClipTokenizer:
    """Callable ``list[str] -> LongTensor [B, context_length]`` with the special ids as attributes."""

    pad_token_id: int = 0

    def __init__(self, context_length: int = 77) -> None:
        if context_length < 3:
            raise ValueError(f"context_length must be >= 3 (SOS, a token, EOS), got {context_length}")
        self.context_length = context_length
        self._bpe = SimpleTokenizer(context_length=context_length)
        self.vocab_size: int = self._bpe.vocab_size
        self.sot_token_id: int = self._bpe.sot_token_id
        self.eot_token_id: int = self._bpe.eot_token_id
        self.mask_token_id: int = self.sot_token_id - 1
        self._retire_merge(self.mask_token_id)

    def _retire_merge(self, token_id: int) -> None:
        """Make ``token_id`` unreachable by BPE and name it [MASK] (see module docstring)."""
        piece = self._bpe.decoder[token_id]
        retired = [pair for pair in self._bpe.bpe_ranks if "".join(pair) == piece]
        for pair in retired:
            del self._bpe.bpe_ranks[pair]
        del self._bpe.encoder[piece]
        self._bpe.encoder[MASK_TOKEN] = token_id
        self._bpe.decoder[token_id] = MASK_TOKEN
        self._bpe.cache = {k: v for k, v in self._bpe.cache.items() if k.startswith("<")}

    @property
    def special_token_ids(self) -> tuple[int, ...]:
        """Ids that masking never selects or produces: pad, [SOS], [EOS], [MASK]."""
        return (self.pad_token_id, self.sot_token_id, self.eot_token_id, self.mask_token_id)

    def __call__(self, texts: list[str] | str) -> torch.LongTensor:
        if isinstance(texts, str):
            texts = [texts]
        return self._bpe(list(texts), context_length=self.context_length)

    def decode(self, token_ids: torch.Tensor | list[int]) -> str:
        """Text of one row, without padding/[SOS]/[EOS] (for logs and tests)."""
        ids = token_ids.tolist() if isinstance(token_ids, torch.Tensor) else list(token_ids)
        keep = [i for i in ids if i not in (self.pad_token_id, self.sot_token_id, self.eot_token_id)]
        return self._bpe.decode(keep).strip()

    def word_token_mask(self, tokens: torch.Tensor) -> torch.Tensor:
        """Bool mask of the caption's word tokens (not pad/[SOS]/[EOS]); the tokens NAM/MLM may mask."""
        return (tokens != self.pad_token_id) & (tokens != self.sot_token_id) & (tokens != self.eot_token_id)
