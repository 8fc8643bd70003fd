"""Seed 000 §4.2 encoders: ViT (``vit-base-patch16-224``, all patch tokens kept) and BERT
(``bert-base-uncased``) through transformers; local weight directories in production, random init from
tiny configs in tests and smoke runs (no download ever happens here)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import BertConfig, BertModel, ViTConfig, ViTModel

from pedes_core.errors import ConfigError


def _local_dir(path: str | Path, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_dir() or not (p / "config.json").is_file():
        raise ConfigError(f"{what}: {p} is not a local model directory with config.json (weights are never downloaded)")
    return p


class ImageEncoder(nn.Module):
    """ViT returning the patch tokens [B, L, D] (the [CLS] token is dropped: BDAM uses the patch sequence)."""

    def __init__(self, vit: ViTModel) -> None:
        super().__init__()
        self.vit = vit
        self.dim = vit.config.hidden_size

    @classmethod
    def tiny(cls, image_size: tuple[int, int], patch: int, width: int, layers: int, heads: int,
             dropout: float) -> ImageEncoder:
        if image_size[0] != image_size[1]:
            raise ConfigError(f"model.image_size: BDAM's ViT needs square images, got {image_size}")
        cfg = ViTConfig(image_size=image_size[0], patch_size=patch, hidden_size=width, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=4 * width, hidden_dropout_prob=dropout)
        return cls(ViTModel(cfg, add_pooling_layer=False))

    @classmethod
    def from_local(cls, path: str | Path) -> ImageEncoder:
        return cls(ViTModel.from_pretrained(_local_dir(path, "method.params.image_encoder"), add_pooling_layer=False))

    def last_shared_layer(self) -> torch.Tensor:
        """Weight of the last dense layer of the final ViT block (GradNorm's shared layer): the last 2-d
        parameter in registration order (robust to transformers' renames of the block attributes)."""
        return [p for p in self.vit.parameters() if p.dim() == 2][-1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.vit(pixel_values=images, interpolate_pos_encoding=True).last_hidden_state[:, 1:]


class TextEncoder(nn.Module):
    """BERT returning token states [B, L, D]; the global text feature is the final [CLS] state."""

    def __init__(self, bert: BertModel) -> None:
        super().__init__()
        self.bert = bert
        self.dim = bert.config.hidden_size

    @classmethod
    def tiny(cls, vocab_size: int, max_len: int, width: int, layers: int, heads: int, dropout: float) -> TextEncoder:
        cfg = BertConfig(vocab_size=vocab_size, hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads,
                         intermediate_size=4 * width, max_position_embeddings=max_len, hidden_dropout_prob=dropout)
        return cls(BertModel(cfg, add_pooling_layer=False))

    @classmethod
    def from_local(cls, path: str | Path) -> TextEncoder:
        return cls(BertModel.from_pretrained(_local_dir(path, "method.params.text_encoder"), add_pooling_layer=False))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class _ClipTower(nn.Module):
    """Base of the two open_clip tower views: both read one :class:`~training.models.clip_backbone.ClipBackbone`
    that the *method* registers once (``BDAMMethod.clip``), so its weights are stored, optimized and loaded
    under one name; the views keep only an unregistered reference to it."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "_backbone", backbone)  # not a submodule: registered by the method
        self.dim = int(backbone.embed_dim)


class ClipImageEncoder(_ClipTower):
    """The open_clip ViT of ``model.arch`` (random, or ``model.checkpoint``'s CLIP weights) returning its
    projected patch tokens [B, M, D] — seed 000's ViT role (the [CLS] token is dropped, as for
    :class:`ImageEncoder`). Any ``model.image_size``/``stride`` (the backbone re-targets its positions)."""

    def last_shared_layer(self) -> torch.Tensor:
        """The last 2-d weight of the final ViT block (GradNorm's shared layer)."""
        return [p for p in self._backbone.clip.visual.transformer.parameters() if p.dim() == 2][-1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self._backbone.image_tokens(images)[0][:, 1:]


class ClipTextEncoder(_ClipTower):
    """The open_clip causal text transformer of ``model.arch`` returning its projected token states [B, L, D]
    for CLIP BPE ids (``attention_mask`` is implied by the causal mask and the padding id; it is accepted for
    the :class:`TextEncoder` interface and used by the pooling)."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        del attention_mask
        return self._backbone.text_tokens(input_ids)[0]
