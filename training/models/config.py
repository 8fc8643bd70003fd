"""The ``model:`` section of a recipe (seed 002 §4.2: CLIP ViT-B/16 at 384×128, 77 text tokens)."""

from __future__ import annotations

from pydantic import Field, model_validator

from pedes_core.configuration import ConfigModel, ConfigPath

TINY_ARCH = "tiny"


class ModelConfig(ConfigModel):
    """Backbone choice and geometry.

    ``arch`` is an open_clip model name (e.g. ``ViT-B-16``) or ``"tiny"``: a small ViT + text
    transformer built through open_clip's custom-config mechanism from the ``tiny_*`` knobs (tests,
    smoke runs). ``nam_layer`` is 1-based: layer ``l`` is the output of the l-th residual block of
    each tower (seed 002 §3.2, default l = 10); it is clipped to the depth of shallower towers.
    """

    arch: str = "ViT-B-16"
    image_size: tuple[int, int] = (384, 128)
    stride: int = Field(16, ge=1)
    context_length: int = Field(77, ge=3)
    checkpoint: ConfigPath | None = None
    embed_dim: int | None = Field(None, ge=1)
    nam_layer: int = Field(10, ge=1)
    tiny_width: int = Field(64, ge=8)
    tiny_layers: int = Field(2, ge=1)
    tiny_heads: int = Field(2, ge=1)
    tiny_patch_size: int = Field(16, ge=1)
    tiny_text_width: int = Field(64, ge=8)
    tiny_text_layers: int = Field(2, ge=1)
    tiny_text_heads: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _check_geometry(self) -> ModelConfig:
        h, w = self.image_size
        if h < 1 or w < 1:
            raise ValueError(f"image_size must be positive, got {self.image_size}")
        if self.arch == TINY_ARCH:
            if self.tiny_width % self.tiny_heads or self.tiny_text_width % self.tiny_text_heads:
                raise ValueError("tiny_width/tiny_text_width must be divisible by their head counts")
            if self.tiny_patch_size > min(h, w):
                raise ValueError(
                    f"tiny_patch_size {self.tiny_patch_size} exceeds image_size {self.image_size}"
                )
        return self
