"""Backbones and heads: open_clip CLIP dual encoder (layer-l token access) and IRRA's cross-modal MLM."""

from training.models.clip_backbone import ClipBackbone
from training.models.config import ModelConfig
from training.models.cross_modal import CrossModalEncoder, MlmHead

__all__ = ["ClipBackbone", "CrossModalEncoder", "MlmHead", "ModelConfig"]
