"""Collate samples into the batch dict of :mod:`training.methods.base` (images, text_tokens,
person_ids, caption_ids, image_index). Captions are tokenized here, once per batch, with the
training core's :class:`~training.tokenization.ClipTokenizer` (CLIP BPE, 77 tokens)."""

from __future__ import annotations

from typing import Any

import torch

from training.tokenization import ClipTokenizer


class TokenizingCollate:
    """Picklable collate function (runs in DataLoader workers).

    Each sample is a dict with ``image`` (tensor [3,H,W]), ``caption`` (str), ``person_id``,
    ``caption_id``, ``image_index`` (ints). Extra tensor keys are stacked, other extras are listed."""

    def __init__(self, tokenizer: ClipTokenizer) -> None:
        self.tokenizer = tokenizer

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        batch: dict[str, Any] = {
            "images": torch.stack([s["image"] for s in samples]),
            "text_tokens": self.tokenizer([s["caption"] for s in samples]),
            "person_ids": torch.tensor([s["person_id"] for s in samples], dtype=torch.long),
            "caption_ids": torch.tensor([s["caption_id"] for s in samples], dtype=torch.long),
            "image_index": torch.tensor([s["image_index"] for s in samples], dtype=torch.long),
        }
        reserved = {"image", "caption", "person_id", "caption_id", "image_index"}
        for key in samples[0].keys() - reserved:
            values = [s[key] for s in samples]
            batch[key] = torch.stack(values) if isinstance(values[0], torch.Tensor) else values
        return batch
