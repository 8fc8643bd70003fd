"""SDM on the CLIP dual encoder (seed 002 §3.3; IRRA's similarity distribution matching).

``sdm``
    Baseline dual encoder: SDM between ``v_cls`` and ``t_eos`` of the full caption (+ optional ITC,
    ID). No masking.

:class:`SdmFamilyMethod` holds what ``sdm``, ``nam_sdm`` (:mod:`training.methods.nam_sdm`) and ``irra``
(:mod:`training.methods.irra`) share: the global losses (SDM, ITC, ID) and the optional cross-modal
MLM head. Every constructor takes ``model``, ``num_classes``, ``num_captions``, ``tokenizer`` and the
recipe's ``method.params`` (validated by a pydantic model; unknown keys are errors). Heads exist only
when their loss weight is > 0 and CLIP's ``logit_scale`` is frozen, so every parameter gets a gradient
in every step: DDP runs with ``find_unused_parameters=False``. Masks are drawn per caption from
(``mask_seed``, epoch, caption id) — identical for any rank count and on resume.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from pedes_core.configuration import ConfigModel
from pedes_core.errors import ConfigError
from training.losses import DEFAULT_TEMPERATURE, id_loss, itc_loss, mlm_accuracy, mlm_loss, sdm_loss
from training.losses.mlm import IGNORE_INDEX
from training.methods.dual_encoder import DualEncoderMethod, id_classifier
from training.models.cross_modal import CrossModalEncoder, MlmHead
from training.nam import DEFAULT_MASK_RATIO, masking_seeds, sample_token_masking
from training.registry import METHODS


class SdmParams(ConfigModel):
    """``method.params`` of ``sdm``."""

    temperature: float = Field(DEFAULT_TEMPERATURE, gt=0)
    sdm_weight: float = Field(1.0, ge=0)
    itc_weight: float = Field(0.0, ge=0)
    id_weight: float = Field(0.0, ge=0)
    mlm_weight: float = Field(0.0, ge=0)
    mask_ratio: float = Field(DEFAULT_MASK_RATIO, ge=0, le=1)
    mask_seed: int = 0
    cmt_depth: int = Field(4, ge=1)


class SdmFamilyMethod(DualEncoderMethod):
    """Shared parts of ``sdm`` / ``nam_sdm`` / ``irra``: optional ID classifier and cross-modal MLM head,
    the global losses and the seeded caption masking."""

    method_name = "sdm_family"
    params_model: type[SdmParams] = SdmParams

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        width = self.backbone.embed_dim
        self.classifier: torch.nn.Linear | None = None
        if self.params.id_weight > 0:
            self.classifier = id_classifier(width, self.num_classes)
        self.cross_modal: CrossModalEncoder | None = None
        self.mlm_head: MlmHead | None = None
        if self.params.mlm_weight > 0:
            self.cross_modal = CrossModalEncoder(width, self.params.cmt_depth)
            self.mlm_head = MlmHead(width, self.tokenizer.vocab_size, self.params.cmt_depth)

    # --- losses ----------------------------------------------------------------------------
    def _global_losses(
        self, image_feature: torch.Tensor, text_feature: torch.Tensor, person_ids: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        p = self.params
        out = {"sdm_loss": p.sdm_weight * sdm_loss(image_feature, text_feature, person_ids, p.temperature)}
        if p.itc_weight > 0:
            out["itc_loss"] = p.itc_weight * itc_loss(image_feature, text_feature, p.temperature)
        if self.classifier is not None:
            image_logits = self.classifier(image_feature)
            text_logits = self.classifier(text_feature)
            out["id_loss"] = p.id_weight * id_loss(image_logits, text_logits, person_ids)
            out["img_acc"] = (image_logits.argmax(-1) == person_ids).float().mean().detach()
            out["txt_acc"] = (text_logits.argmax(-1) == person_ids).float().mean().detach()
        return out

    def _mlm_losses(
        self, masked_text_tokens: torch.Tensor, image_tokens: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        assert self.cross_modal is not None and self.mlm_head is not None
        states = self.cross_modal(masked_text_tokens, image_tokens)
        # The vocabulary projection only at the masked positions (the loss ignores the others): the same
        # token-mean cross-entropy at a fraction of the cost ([N, V] instead of [B, L, V] logits).
        selected = labels != IGNORE_INDEX
        if bool(selected.any()):
            logits, labels = self.mlm_head(states[selected]), labels[selected]
        else:  # nothing masked: an exact zero that still depends on every head parameter (DDP)
            logits, labels = self.mlm_head(states[:, :1]), labels[:, :1]
        return {
            "mlm_loss": self.params.mlm_weight * mlm_loss(logits, labels),
            "mlm_acc": mlm_accuracy(logits.detach(), labels),
        }

    def _mask(
        self, tokens: torch.Tensor, probabilities: torch.Tensor, caption_ids: torch.Tensor, purpose: int
    ):
        seeds = masking_seeds(caption_ids, self.epoch, self.params.mask_seed, purpose)
        return sample_token_masking(tokens, probabilities, self.tokenizer.mask_token_id, seeds=seeds)


@METHODS.register("sdm")
class SdmMethod(SdmFamilyMethod):
    """Dual encoder + SDM (+ optional ITC/ID), unmasked captions."""

    method_name = "sdm"
    params_model = SdmParams

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.params.mlm_weight > 0:
            raise ConfigError("method 'sdm' has no masking: use 'nam_sdm' or 'irra' for an MLM loss")

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        image = self.backbone.encode_image(batch["images"])
        text = self.backbone.encode_text(batch["text_tokens"])
        return self._global_losses(image, text, batch["person_ids"])
