"""The ``model:`` section of a recipe (seed 002 §4.2: CLIP ViT-B/16 at 384×128, 77 text tokens)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from pedes_core.configuration import ConfigModel, ConfigPath


class ModelConfig(ConfigModel):
    """Backbone choice and geometry.

    ``arch`` is an open_clip model config name: open_clip's own (``ViT-B-16``, ...) or one of the
    project's, shipped as data in ``training/models/model_configs/`` and registered with
    ``open_clip.add_model_config`` (``tiny``: 2+2 blocks of width 64 for tests and smoke runs;
    ``cpu-tiny``: the CPU retrieval profile's 3+3 blocks of width 96, patch 8). ``vision`` / ``text``
    replace fields of that config's ``vision_cfg`` / ``text_cfg`` (open_clip's names: ``width``,
    ``layers``, ``head_width``, ``patch_size`` / ``width``, ``heads``, ``layers``, ...); unknown names
    are errors. ``embed_dim`` replaces the joint dimension. ``nam_layer`` is 1-based: layer ``l`` is the
    output of the l-th residual block of each tower (seed 002 §3.2, default l = 10); it is clipped to the
    depth of shallower towers.
    """

    arch: str = "ViT-B-16"
    image_size: tuple[int, int] = (384, 128)
    stride: int = Field(16, ge=1)
    context_length: int = Field(77, ge=3)
    checkpoint: ConfigPath | None = None
    embed_dim: int | None = Field(None, ge=1)
    nam_layer: int = Field(10, ge=1)
    vision: dict[str, Any] = Field(default_factory=dict)
    text: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_geometry(self) -> ModelConfig:
        h, w = self.image_size
        if h < 1 or w < 1:
            raise ValueError(f"image_size must be positive, got {self.image_size}")
        return self
