"""Seed 001 §3: weakly supervised dual-granularity cross-modal identity association
(registered ``weak_dual_granularity``).

Only image-text pairing is known: the method never reads ``batch["person_ids"]`` (``forward`` first
drops the key through :func:`hide_identity_labels`; a loader can do the same with that function).
Losses (Eq. 22): ``L = L_itc + L_rc_b + L_rc_g + L_rc_h``, each with a weight/switch:

* ``L_itc`` (Eqs. 1-2): CLIP InfoNCE, t2v + v2t summed (so 2 × :func:`training.losses.itc_loss`).
* ``L_rc_b`` LRC (Eqs. 3-10) on the batch — :func:`training.losses.weak_relations.local_relation_loss`.
* ``L_rc_g`` GSRC-FR (Eqs. 11-18) — image and text :class:`~training.memory_bank.FeatureBank` over all
  training pairs (row = ``caption_ids``, one row per image-text pair), momentum ``bank_momentum`` (α of
  Eq. 11); relations from the banks *before* this step's update, banks updated after the loss.
* ``L_rc_h`` IASC-CL (Eqs. 19-21): augmented image (flip, pad + random crop, random erasing; taken from
  ``batch["augmented_images"]`` when the loader supplies it, else applied here on the tensor) and the
  caption with ``iasc_mask_ratio`` (0.5, §4.5) of its word tokens replaced by [MASK]; the same
  relation loss as LRC.

Choices (the paper leaves them open; tested): λ (Eq. 5) = 0.5, top-k = 10, α (Eq. 11) = 0.5; the
IASC-CL targets are the LRC relations of the *clean* pair (augmentation does not change identities,
and the clean features give the more reliable relations); relations use detached features.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from pydantic import Field
from torchvision.transforms import v2

from pedes_core.configuration import ConfigModel
from training.losses import itc_loss
from training.losses.weak_relations import (
    DEFAULT_SOFTENING,
    DEFAULT_TEMPERATURE,
    DEFAULT_THRESHOLD,
    DEFAULT_TOP_K,
    global_relation_loss,
    global_relations,
    local_relation_loss,
    local_relation_matrix,
)
from training.memory_bank import FeatureBank
from training.methods.dual_encoder import DualEncoderMethod
from training.nam import equal_masking_probabilities, masking_seeds, sample_token_masking
from training.registry import METHODS

IDENTITY_KEY = "person_ids"
IASC_SEED_PURPOSE = 4
BANK_DTYPES = {"float32": torch.float32, "float16": torch.float16}


def hide_identity_labels(batch: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``batch`` without identity labels (the weakly supervised loader path)."""
    return {k: v for k, v in batch.items() if k != IDENTITY_KEY}


class WeakParams(ConfigModel):
    """``method.params`` of ``weak_dual_granularity`` (defaults: seed 001 §3-4)."""

    itc_weight: float = Field(1.0, ge=0)
    lrc_weight: float = Field(1.0, ge=0)
    gsrc_weight: float = Field(1.0, ge=0)
    iasc_weight: float = Field(1.0, ge=0)
    threshold: float = Field(DEFAULT_THRESHOLD, gt=-1, lt=1)
    softening: float = Field(DEFAULT_SOFTENING, gt=0, lt=1)
    top_k: int = Field(DEFAULT_TOP_K, ge=1)
    bank_momentum: float = Field(0.5, gt=0, le=1)
    bank_dtype: str = Field("float32", pattern="^(float32|float16)$")
    temperature: float = Field(DEFAULT_TEMPERATURE, gt=0)
    iasc_mask_ratio: float = Field(0.5, ge=0, le=1)
    mask_seed: int = 0
    flip_prob: float = Field(0.5, ge=0, le=1)
    crop_padding: int = Field(10, ge=0)
    erasing_prob: float = Field(0.5, ge=0, le=1)


@METHODS.register("weak_dual_granularity")
class WeakDualGranularityMethod(DualEncoderMethod):
    """CLIP dual encoder trained from pairing only (ITC + LRC + GSRC-FR + IASC-CL)."""

    method_name = "weak_dual_granularity"
    uses_identity_labels = False

    params_model = WeakParams
    params: WeakParams

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        p = self.params
        model = self.model_config
        dim = self.backbone.embed_dim
        self.image_bank: FeatureBank | None = None
        self.text_bank: FeatureBank | None = None
        if p.gsrc_weight > 0:
            dtype = BANK_DTYPES[p.bank_dtype]
            self.image_bank = FeatureBank(self.num_captions, dim, p.bank_momentum, dtype)
            self.text_bank = FeatureBank(self.num_captions, dim, p.bank_momentum, dtype)
        height, width = model.image_size
        self.augment = v2.Compose(
            [
                v2.RandomHorizontalFlip(p.flip_prob),
                v2.Pad(p.crop_padding),
                v2.RandomCrop((height, width)),
                v2.RandomErasing(p.erasing_prob),
            ]
        )
        self.last_relations: dict[str, torch.Tensor] = {}

    # --- IASC-CL inputs ---------------------------------------------------------------------------
    def augment_images(self, images: torch.Tensor) -> torch.Tensor:
        """Eq. 19: per-sample flip, pad + crop, random erasing on normalized image tensors."""
        return torch.stack([self.augment(image) for image in images])

    def mask_captions(self, tokens: torch.Tensor, caption_ids: torch.Tensor) -> torch.Tensor:
        """Eq. 20: replace ``iasc_mask_ratio`` of the word tokens by [MASK]."""
        p = self.params
        valid = self.tokenizer.word_token_mask(tokens)
        seeds = masking_seeds(caption_ids, self.epoch, p.mask_seed, IASC_SEED_PURPOSE)
        return sample_token_masking(
            tokens,
            equal_masking_probabilities(valid, p.iasc_mask_ratio),
            self.tokenizer.mask_token_id,
            seeds=seeds,
            mask_fraction=1.0,
            random_fraction=0.0,
        ).tokens

    # --- step ---------------------------------------------------------------------------------
    def forward(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        batch = hide_identity_labels(batch)
        p = self.params
        images, tokens, rows = batch["images"], batch["text_tokens"], batch["caption_ids"]
        image = self.backbone.encode_image(images)
        text = self.backbone.encode_text(tokens)
        out: dict[str, torch.Tensor] = {}
        if p.itc_weight > 0:
            out["itc_loss"] = p.itc_weight * 2 * itc_loss(image, text, p.temperature)
        relation = local_relation_matrix(image, text, p.threshold)
        out["lrc_relations"] = (relation.sum() - relation.shape[0]).detach() / relation.shape[0]
        if p.lrc_weight > 0:
            out["lrc_loss"] = p.lrc_weight * local_relation_loss(image, text, relation, p.temperature, p.softening)
        if self.image_bank is not None and self.text_bank is not None:
            relations = global_relations(
                image.detach(), self.image_bank.features, self.image_bank.filled, rows, p.threshold, p.top_k
            )
            out["gsrc_loss"] = p.gsrc_weight * global_relation_loss(
                image, text, self.image_bank.features, self.text_bank.features, relations, p.temperature
            )
            out["gsrc_mined"] = relations.mined.float().mean()
            self.last_relations = {"rows": rows.detach().cpu(), "relation": relation.cpu(),
                                   "bank_rows": relations.columns.cpu(),
                                   "bank_related": relations.related[:, relation.shape[0]:].cpu()}
            if self.training:
                self.image_bank.update(rows, image)
                self.text_bank.update(rows, text)
        else:
            self.last_relations = {"rows": rows.detach().cpu(), "relation": relation.cpu()}
        if p.iasc_weight > 0 and self.training:
            augmented = batch.get("augmented_images")
            if augmented is None:
                augmented = self.augment_images(images)
            masked = self.mask_captions(tokens, rows)
            out["iasc_loss"] = p.iasc_weight * local_relation_loss(
                self.backbone.encode_image(augmented), self.backbone.encode_text(masked), relation, p.temperature,
                p.softening,
            )
        return out

    def extra_state(self) -> dict[str, Any]:
        return {"epoch": self.epoch}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.epoch = int(state.get("epoch", 0))
