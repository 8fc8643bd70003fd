"""Seed 003: Sew calibration + Masked Caption Modeling on the CLIP dual encoder (registered ``sew_mcm``).

Training step (Algorithm 1): captions are masked first (``mask_ratio`` = 0.1 of the word tokens, every
selected token replaced by the mask token — CLIP's retired BPE id ``tokenizer.mask_token_id`` whose row
of the token-embedding table is a learnable vector); image and masked caption go through the dual
encoder; ``L_sew`` (Eq. 12; :mod:`training.losses.sew`) is computed on the global features (image
[CLS], text [EOS]) with the length-adaptive margin of Eq. 10 (caption length = word tokens of the
*unmasked* caption, bounds ``t_min``/``t_max`` from the recipe, §4.2); ``L_mcm`` (Eq. 11) predicts the
masked words with :class:`~training.models.mcm_decoder.McmDecoder` from the masked caption's token
features and the image tokens. ``L = λ1 L_sew + λ2 L_mcm``.

Inference (``encode_image``/``encode_text``) uses only the dual encoder: the decoder is training-only.

Test-time re-ranking (§4.1: "we apply a re-ranking post-processing approach ... following NAFS", Tables
1-3 "R"): ``rerank`` is the evaluator's list-level stage-2 hook (``supports_rerank``), active with
``eval.rerank_top_k = K > 0``: re-ranking by visual neighbours, ``S' = S + Jaccard(N(T, K), N(I, K))``
over the already-encoded, normalized features (:mod:`eval.rerank`, where the reading of NAFS is
declared). Results carry both stages: ``t2i`` (stage 1) and ``t2i_rerank`` (stage 2).

Ablation switches (``method.params``): ``sew_weight`` (λ1), ``mcm_weight`` (λ2; 0 removes the decoder),
``sew_id`` (identity part of Sew), ``adaptive_margin`` (False → ``fixed_margin``, Table 4 model 3),
``mask_ratio`` (0 → no masking; masking without MCM = Table 5 "masking only"), ``sdm_weight`` (an
optional SDM term, 0 by default: the paper's loss is Sew + MCM only).

Choice: Algorithm 1's training-only BatchNorm on the CLS features is omitted — every Sew term
L2-normalizes the features, and a BN used only in training would change the features the evaluator
sees. The identity classifier ``ω`` exists only when ``sew_id`` is on (every parameter gets a gradient).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field, model_validator
from torch import nn

from eval.inference import RerankContext
from eval.rerank import visual_neighbour_rerank
from pedes_core.configuration import ConfigModel
from training.losses import IGNORE_INDEX, mlm_accuracy, mlm_loss, sdm_loss
from training.losses.sdm import DEFAULT_TEMPERATURE
from training.losses.sew import (
    DEFAULT_MARGIN_MAX,
    DEFAULT_MARGIN_MIN,
    DEFAULT_SCALE,
    length_adaptive_margin,
    sew_calibration_loss,
)
from training.methods.dual_encoder import ID_CLASSIFIER_INIT_STD, DualEncoderMethod
from training.models.mcm_decoder import McmDecoder
from training.nam import equal_masking_probabilities, masking_seeds, sample_token_masking
from training.registry import METHODS

MCM_SEED_PURPOSE = 3


class SewMcmParams(ConfigModel):
    """``method.params`` of ``sew_mcm`` (defaults: seed 003 §4.2, CUHK-PEDES length bounds)."""

    sew_weight: float = Field(1.0, ge=0)
    mcm_weight: float = Field(1.0, ge=0)
    sdm_weight: float = Field(0.0, ge=0)
    sew_id: bool = True
    scale: float = Field(DEFAULT_SCALE, gt=0)
    adaptive_margin: bool = True
    margin_min: float = Field(DEFAULT_MARGIN_MIN, ge=0)
    margin_max: float = Field(DEFAULT_MARGIN_MAX, ge=0)
    fixed_margin: float = Field(0.5, ge=0)
    length_min: float = Field(20, ge=0)
    length_max: float = Field(60, gt=0)
    mask_ratio: float = Field(0.1, ge=0, le=1)
    mask_seed: int = 0
    mcm_depth: int = Field(1, ge=1)
    temperature: float = Field(DEFAULT_TEMPERATURE, gt=0)

    @model_validator(mode="after")
    def _check(self) -> SewMcmParams:
        if self.length_max <= self.length_min:
            raise ValueError(f"length_max {self.length_max} must exceed length_min {self.length_min}")
        if self.margin_max < self.margin_min:
            raise ValueError("margin_max must be >= margin_min")
        if self.mcm_weight > 0 and self.mask_ratio == 0:
            raise ValueError("mcm_weight > 0 needs mask_ratio > 0 (nothing to predict)")
        return self


@METHODS.register("sew_mcm")
class SewMcmMethod(DualEncoderMethod):
    """Dual encoder + Sew calibration (+ MCM decoder, training only); see the module docstring."""

    method_name = "sew_mcm"
    supports_rerank = True  # rerank(): seed 003 §4.1, re-ranking by visual neighbours (NAFS)

    params_model = SewMcmParams
    params: SewMcmParams

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        width = self.backbone.embed_dim
        self.classifier: nn.Parameter | None = None
        if self.params.sew_weight > 0 and self.params.sew_id:
            self.classifier = nn.Parameter(torch.randn(self.num_classes, width) * ID_CLASSIFIER_INIT_STD)
        self.mcm_decoder: McmDecoder | None = None
        if self.params.mcm_weight > 0:
            self.mcm_decoder = McmDecoder(width, self.tokenizer.vocab_size, depth=self.params.mcm_depth)

    # --- inference ----------------------------------------------------------------------------
    @torch.no_grad()
    def rerank(self, context: RerankContext) -> torch.Tensor:
        """Stage 2 (§4.1, NAFS): ``S + Jaccard(N(T, K), N(I, K))`` with ``K = context.top_k``, ``[Q, G]``."""
        device = context.device
        return visual_neighbour_rerank(
            context.similarity.to(device), context.gallery_features.to(device), context.top_k
        ).cpu()

    def on_epoch_start(self, epoch: int) -> None:
        self.epoch = epoch

    # --- training -----------------------------------------------------------------------------
    def margins(self, text_tokens: torch.Tensor) -> torch.Tensor:
        """Per-caption margin ``M_i`` (Eq. 10, or the fixed margin when ``adaptive_margin`` is off)."""
        p = self.params
        lengths = self.tokenizer.word_token_mask(text_tokens).sum(dim=1)
        if not p.adaptive_margin:
            return torch.full(lengths.shape, p.fixed_margin, device=text_tokens.device)
        return length_adaptive_margin(lengths, p.length_min, p.length_max, p.margin_min, p.margin_max)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        p = self.params
        images, tokens, person_ids = batch["images"], batch["text_tokens"], batch["person_ids"]
        masked_tokens, labels = tokens, None
        if self.training and p.mask_ratio > 0:
            valid = self.tokenizer.word_token_mask(tokens)
            seeds = masking_seeds(batch["caption_ids"], self.epoch, p.mask_seed, MCM_SEED_PURPOSE)
            masked = sample_token_masking(
                tokens,
                equal_masking_probabilities(valid, p.mask_ratio),
                self.tokenizer.mask_token_id,
                seeds=seeds,
                mask_fraction=1.0,
                random_fraction=0.0,
            )
            masked_tokens, labels = masked.tokens, masked.labels
        image_tokens, _ = self.backbone.image_tokens(images)
        text_tokens, _ = self.backbone.text_tokens(masked_tokens)
        image_feature = image_tokens[:, 0]
        text_feature = self.backbone.pool_text(text_tokens, masked_tokens)
        out: dict[str, torch.Tensor] = {}
        if p.sew_weight > 0:
            margins = self.margins(tokens)
            parts = sew_calibration_loss(
                image_feature, text_feature, person_ids, margins, self.classifier, p.scale
            )
            out["sew_match_loss"] = p.sew_weight * parts["match"]
            if "id" in parts:
                out["sew_id_loss"] = p.sew_weight * parts["id"]
            out["margin_mean"] = margins.mean().detach()
        if p.sdm_weight > 0 or not out:
            out["sdm_loss"] = max(p.sdm_weight, 0.0) * sdm_loss(image_feature, text_feature, person_ids, p.temperature)
        if self.mcm_decoder is not None:
            if labels is None:  # evaluation-mode loss: nothing masked, nothing to predict
                labels = torch.full_like(tokens, IGNORE_INDEX)
            padding = tokens == self.tokenizer.pad_token_id
            logits = self.mcm_decoder(text_tokens, image_tokens, padding)
            out["mcm_loss"] = p.mcm_weight * mlm_loss(logits, labels)
            out["mcm_acc"] = mlm_accuracy(logits.detach(), labels)
        return out
