"""IRRA-style fine-tuning (``irra``; seed 002 §4.1 "we adopt the IRRA method"): SDM + ID + MLM — 15 %
BERT masking of a second copy of the caption, predicted through the cross-modal transformer; SDM/ID on
the unmasked caption. Shared parts: :mod:`training.methods.sdm`.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from training.methods.sdm import SdmFamilyMethod, SdmParams
from training.nam import equal_masking_probabilities
from training.registry import METHODS

IRRA_SEED_PURPOSE = 2


class IrraParams(SdmParams):
    """``method.params`` of ``irra`` (IRRA defaults: SDM + ID + MLM, each weight 1)."""

    id_weight: float = Field(1.0, ge=0)
    mlm_weight: float = Field(1.0, ge=0)


@METHODS.register("irra")
class IrraMethod(SdmFamilyMethod):
    """IRRA-style fine-tuning: SDM + ID on the full caption, MLM on a BERT-masked copy (p = 0.15)."""

    method_name = "irra"
    params_model = IrraParams

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        images, tokens = batch["images"], batch["text_tokens"]
        backbone = self.backbone
        image_tokens, _ = backbone.image_tokens(images)
        full = backbone.trim_padding(tokens)  # exact for the pooled feature; the MLM copy keeps the width
        text_tokens, _ = backbone.text_tokens(full)
        out = self._global_losses(
            image_tokens[:, 0], backbone.pool_text(text_tokens, full), batch["person_ids"]
        )
        if self.cross_modal is not None:
            valid = self.tokenizer.word_token_mask(tokens)
            probabilities = equal_masking_probabilities(valid, self.params.mask_ratio)
            masked = self._mask(tokens, probabilities, batch["caption_ids"], IRRA_SEED_PURPOSE)
            mlm_text_tokens, _ = backbone.text_tokens(masked.tokens)
            out.update(self._mlm_losses(mlm_text_tokens, image_tokens, masked.labels))
        return out
