"""CLIP dual encoder through open_clip, with layer-l token access for NAM (seed 002 §3.2, §4.2).

* Built with open_clip's ``CLIP`` constructor from a model config *as data*: open_clip's registry,
  where the project's own configs (``model_configs/*.json``: ``tiny``, ``cpu-tiny``) are added with
  ``open_clip.add_model_config``, with the recipe's ``model.vision`` / ``model.text`` fields applied
  (:func:`tower_config`); always randomly initialised (no ``pretrained`` lookup, so no network).
* The ViT is re-targeted to ``image_size`` and ``stride`` (overlapping patches when stride < patch):
  the patch convolution's stride is changed and the position embeddings are interpolated
  (:mod:`training.models.position_embedding`).
* ``checkpoint`` (a local open_clip / OpenAI state dict, ``.pt``/``.bin``/``.safetensors``) is loaded
  with ``weights_only=True`` after that; a square checkpoint grid (14×14 for ViT-B/16 at 224) is
  interpolated to the new grid; text position embeddings of another length are stretched or truncated
  to ``context_length`` (:func:`~training.models.position_embedding.extend_text_position_embedding`).
* The towers are run block by block here (same modules, same math as open_clip's ``encode_*``) so
  one pass yields both the final tokens and the layer-l tokens; a no-gradient pass can stop at l.

Choice (seed 002 leaves it open): tokens are compared in the joint embedding space. The paper's
Eq. 1 needs text and image token embeddings of one dimension d, but ViT-B/16 has width 768 and the
text transformer 512, so layer-l tokens are mapped with each tower's final LayerNorm and projection
(:meth:`project_image_tokens`, :meth:`project_text_tokens`) before the cosine similarity.

``logit_scale`` of the open_clip model is frozen (SDM uses a fixed temperature): no parameter is
left without a gradient, so DDP needs no ``find_unused_parameters``.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path

import open_clip
import torch
from open_clip.factory import load_state_dict as load_open_clip_state_dict
from open_clip.model import CLIPTextCfg, CLIPVisionCfg
from open_clip.transformer import VisionTransformer
from torch import nn

from pedes_core.errors import ConfigError
from training.models.config import ModelConfig
from training.models.position_embedding import (
    extend_text_position_embedding,
    interpolate_position_embedding,
    patch_grid,
    square_grid,
)
from training.tokenization import ClipTokenizer

log = logging.getLogger(__name__)

VISUAL_POS_KEY = "visual.positional_embedding"
TEXT_POS_KEY = "positional_embedding"


#: the project's own model configs (open_clip's JSON format), registered with open_clip on import
MODEL_CONFIG_DIR = Path(__file__).with_name("model_configs")
PROJECT_ARCHS: frozenset[str] = frozenset(p.stem for p in MODEL_CONFIG_DIR.glob("*.json"))
open_clip.add_model_config(MODEL_CONFIG_DIR)

_VISION_FIELDS = frozenset(f.name for f in dataclasses.fields(CLIPVisionCfg))
_TEXT_FIELDS = frozenset(f.name for f in dataclasses.fields(CLIPTextCfg))


def tower_config(config: ModelConfig) -> dict:
    """The open_clip model config of ``config.arch`` with ``config.vision`` / ``config.text`` /
    ``embed_dim`` applied (a copy; ``ConfigError`` naming the field for unknown names or bad sizes)."""
    base = open_clip.get_model_config(config.arch)
    if base is None:
        raise ConfigError(f"model.arch: unknown model config {config.arch!r} (open_clip's, or one of the "
                          f"project's: {sorted(PROJECT_ARCHS)})")
    cfg = copy.deepcopy(base)
    if "timm_model_name" in cfg.get("vision_cfg", {}) or "hf_model_name" in cfg.get("text_cfg", {}):
        raise ConfigError(f"model.arch: {config.arch!r} is not a ViT CLIP with open_clip's own towers")
    for section, known, given in (("vision", _VISION_FIELDS, config.vision), ("text", _TEXT_FIELDS, config.text)):
        unknown = sorted(set(given) - known)
        if unknown:
            raise ConfigError(f"model.{section}: unknown open_clip field(s) {unknown}")
        cfg[f"{section}_cfg"].update(copy.deepcopy(given))
    if config.embed_dim is not None:
        cfg["embed_dim"] = config.embed_dim
    vision, text = cfg["vision_cfg"], cfg["text_cfg"]
    if vision["width"] % vision.get("head_width", 64):
        raise ConfigError(f"model.vision: width {vision['width']} is not a multiple of head_width "
                          f"{vision.get('head_width', 64)}")
    if text["width"] % text.get("heads", 8):
        raise ConfigError(f"model.text: width {text['width']} is not a multiple of heads {text.get('heads', 8)}")
    if vision["patch_size"] > min(config.image_size):
        raise ConfigError(f"model.vision: patch_size {vision['patch_size']} exceeds image_size {config.image_size}")
    return cfg


def open_clip_model_config(config: ModelConfig, vocab_size: int) -> dict:
    """:func:`tower_config` with the recipe's image size, context length and the tokenizer's vocabulary."""
    cfg = tower_config(config)
    cfg["vision_cfg"]["image_size"] = list(config.image_size)
    cfg["text_cfg"]["context_length"] = config.context_length
    cfg["text_cfg"]["vocab_size"] = vocab_size
    return cfg


def _create_open_clip(model_cfg: dict) -> open_clip.CLIP:
    """A randomly initialised ``open_clip.CLIP`` from a model config dict (the direct constructor)."""
    body = copy.deepcopy(model_cfg)
    model = open_clip.CLIP(embed_dim=body.pop("embed_dim"), vision_cfg=body.pop("vision_cfg"),
                           text_cfg=body.pop("text_cfg"), quick_gelu=body.pop("quick_gelu", False))
    if not isinstance(model.visual, VisionTransformer):
        raise ConfigError("model.arch: only ViT CLIP models with the built-in text tower are supported")
    return model


class ClipBackbone(nn.Module):
    """Image and text towers of an open_clip CLIP, re-targeted to ``config.image_size``/``stride``."""

    def __init__(self, config: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.config = config
        self.clip = _create_open_clip(open_clip_model_config(config, vocab_size))
        self.clip.logit_scale.requires_grad_(False)
        visual = self.clip.visual
        self.patch_size = int(visual.conv1.kernel_size[0])
        if config.stride > self.patch_size:
            raise ConfigError(f"model.stride: {config.stride} > patch size {self.patch_size} skips pixels")
        try:
            self.grid = patch_grid(tuple(config.image_size), self.patch_size, config.stride)
        except ValueError as exc:
            raise ConfigError(f"model.image_size: {exc}") from None
        old_grid = tuple(visual.grid_size)
        with torch.no_grad():
            new_pos = interpolate_position_embedding(visual.positional_embedding.data, old_grid, self.grid)
        visual.positional_embedding = nn.Parameter(new_pos)
        visual.conv1.stride = (config.stride, config.stride)
        visual.grid_size = self.grid
        visual.image_size = tuple(config.image_size)
        self.embed_dim: int = int(visual.output_dim)
        self.vision_layers = len(visual.transformer.resblocks)
        self.text_layers = len(self.clip.transformer.resblocks)
        self.nam_layer = min(config.nam_layer, self.vision_layers, self.text_layers)
        if config.checkpoint is not None:
            self.load_clip_checkpoint(config.checkpoint)

    # --- weights ----------------------------------------------------------------------------
    def load_clip_checkpoint(self, path: Path | str) -> None:
        """Load a local open_clip/OpenAI CLIP state dict (``weights_only=True``), adapting positions."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"model.checkpoint: file not found: {path}")
        try:
            state = load_open_clip_state_dict(str(path), weights_only=True)
        except Exception as exc:  # unreadable, pickled objects, JIT archive...
            raise ConfigError(f"model.checkpoint: {path}: not a loadable CLIP state dict ({exc})") from None
        state = dict(state)
        pos = state.get(VISUAL_POS_KEY)
        target = self.clip.visual.positional_embedding
        if pos is not None and pos.shape != target.shape:
            try:
                old_grid = square_grid(pos.shape[0] - 1)
                state[VISUAL_POS_KEY] = interpolate_position_embedding(pos, old_grid, self.grid)
            except ValueError as exc:
                raise ConfigError(f"model.checkpoint: {path}: {exc}") from None
        text_pos = state.get(TEXT_POS_KEY)
        context = self.clip.positional_embedding.shape[0]
        if text_pos is not None and text_pos.shape[0] != context:
            # shorter: 77 CLIP positions stretched to e.g. CFAM's 168 (seed 004 §5.1; reading in
            # position_embedding.extend_text_position_embedding); longer: the first `context` rows
            state[TEXT_POS_KEY] = extend_text_position_embedding(text_pos, context)
            log.info("text position embeddings %d -> %d", text_pos.shape[0], context)
        for key in ("input_resolution", "context_length", "vocab_size"):
            state.pop(key, None)
        try:
            self.clip.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ConfigError(
                f"model.checkpoint: {path} does not match arch {self.config.arch!r}: {exc}"
            ) from None
        log.info("loaded CLIP weights from %s", path)

    # --- image tower ----------------------------------------------------------------------
    def image_tokens(
        self, images: torch.Tensor, return_layer: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Projected final tokens ``[B, 1+M, D]`` ([CLS] first) and raw layer-``return_layer``
        tokens ``[B, 1+M, width]`` (1-based layer; ``None`` = not requested)."""
        visual = self.clip.visual
        x = visual._embeds(images)
        layer_out = None
        for index, block in enumerate(visual.transformer.resblocks, start=1):
            x = block(x)
            if index == return_layer:
                layer_out = x
        return self.project_image_tokens(x), layer_out

    def project_image_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Final LayerNorm + projection of ViT tokens into the joint space (used for any layer)."""
        visual = self.clip.visual
        return visual.ln_post(x) @ visual.proj

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Global image feature ``v_cls`` [B, D]."""
        return self.image_tokens(images)[0][:, 0]

    # --- text tower -----------------------------------------------------------------------
    def _text_embeds(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        length = text.shape[1]
        if length > self.clip.positional_embedding.shape[0]:
            raise ValueError(f"text has {length} tokens, context length is {self.clip.context_length}")
        x = self.clip.token_embedding(text)
        x = x + self.clip.positional_embedding[:length].to(x.dtype)
        return x, self.clip.attn_mask[:length, :length]

    def text_tokens(
        self, text: torch.Tensor, return_layer: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Projected final tokens ``[B, L, D]`` and raw layer-``return_layer`` tokens ``[B, L, width]``."""
        x, mask = self._text_embeds(text)
        layer_out = None
        for index, block in enumerate(self.clip.transformer.resblocks, start=1):
            x = block(x, attn_mask=mask)
            if index == return_layer:
                layer_out = x
        return self.project_text_tokens(x), layer_out

    def text_layer_tokens(self, text: torch.Tensor, layer: int) -> torch.Tensor:
        """Raw tokens after block ``layer`` (1-based), running only the first ``layer`` blocks."""
        if not 1 <= layer <= self.text_layers:
            raise ValueError(f"layer {layer} outside 1..{self.text_layers}")
        x, mask = self._text_embeds(text)
        for block in self.clip.transformer.resblocks[:layer]:
            x = block(x, attn_mask=mask)
        return x

    def project_text_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Final LayerNorm + projection of text tokens into the joint space (used for any layer)."""
        x = self.clip.ln_final(x)
        projection = self.clip.text_projection
        return projection(x) if isinstance(projection, nn.Linear) else x @ projection

    @staticmethod
    def trim_padding(text: torch.Tensor, pad_token_id: int = ClipTokenizer.pad_token_id) -> torch.Tensor:
        """``text`` without its trailing columns that are padding in every row (a batch of 25-token captions
        padded to a 64-token context runs the text tower on ~40 columns instead of 64: ≈ 1.3× faster SDM + ID
        steps of the CPU profile). Exact for the global text feature: the text transformer is causal (no token
        attends to a later one) and :meth:`pool_text` reads the [EOS] position, which is before the cut. The
        cut columns' per-position outputs are not computed, so a caller that reads every position (a
        cross-modal MLM head) passes the full width."""
        used = (text != pad_token_id).any(dim=0).nonzero()
        return text if used.numel() == 0 else text[:, : int(used.max()) + 1]

    @staticmethod
    def pool_text(tokens: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The [EOS] token's feature ``t_eos`` (EOS has the largest id in each row, as in CLIP)."""
        return tokens[torch.arange(tokens.shape[0], device=tokens.device), text.argmax(dim=-1)]

    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        """Global text feature ``t_eos`` [B, D] (trailing padding columns cut first: :meth:`trim_padding`)."""
        text = self.trim_padding(text)
        return self.pool_text(self.text_tokens(text)[0], text)
