"""Seed 004 §4: CFAM — Cross-modal Fine-grained Aligning and Matching (registered ``cfam``).

Training: the CLIP towers give token embeddings ``V`` (image, [CLS] + patches) and ``W`` (text, all
non-padding positions), both projected into the joint space. The shared granularity decoder
(:class:`~training.models.granularity_decoder.GranularityDecoder`, K = 16 queries of dim 512, 2 layers,
8 heads) turns each into ``V̄``/``W̄``; the local similarity of Eq. 4 feeds an SDM loss ``L_ls``. The
Matcher (:class:`~training.models.hard_negative_matcher.HardNegativeMatcher`) classifies the B positive
pairs and 2B hard negatives (per image the most similar unpaired text and per text the most similar
unpaired image, mined on the global similarity) with BCE ``L_m``. ``L_gs`` is SDM on the global
embeddings (image [CLS], text [EOS]); ``L_cid`` is the cross-modal identity loss. Eq. 6:
``L = L_gs + λ1 L_ls + λ2 L_m + λ3 L_cid`` (λ = 1 by default; each weight 0 switches the term and its
module off — ablations of Table 7).

Inference uses only the global embeddings (``encode_image``/``encode_text``).

Training recipe of §5.1 beyond the losses:

* Learning rates: Adam at 1e-5 for the pretrained CLIP towers, 5e-5 "for the random-initialized modules".
  :meth:`optimizer_groups` names ``pretrained`` (the CLIP backbone) and ``new`` (granularity decoder,
  matcher, identity classifier); ``configs/cfam.yaml`` sets ``optim.group_lr: {new: 5.0e-5}`` (the engine's
  general per-group LR mechanism, :mod:`training.engine.optim`).
* Text augmentation, "random masking and replacement": in training every word token of the caption
  (never padding, [SOS], [EOS]) is selected with probability ``text_aug_prob`` and then replaced by the
  mask token with probability ``text_aug_mask_fraction``, by a random vocabulary token with probability
  ``text_aug_random_fraction``, else kept. Reading (declared; the paper gives no rates): BERT's recipe,
  0.15 / 0.8 / 0.1, as IRRA's masking, with per-caption draws seeded by (``text_aug_seed``, epoch, caption
  id) so they are the same for any worker or rank count and on resume. Evaluation never augments.
  ``text_aug_prob: 0`` switches it off.
* 168 text tokens from a 77-token CLIP checkpoint: the text position embeddings are extended when the
  checkpoint is loaded (:func:`training.models.position_embedding.extend_text_position_embedding`).

Choice: the paper defers ``L_cid`` "with hard negative samples" to its supplement, which we do not
have. We implement it as the IRRA-style identity classification of both global embeddings by one
shared linear classifier (:func:`training.losses.id_loss`), the usual "cross-modal identity loss" of
CLIP-based TBPS methods; the hard-negative part is carried by ``L_m``.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import nn

from pedes_core.configuration import ConfigModel
from pedes_core.errors import ConfigError
from training.losses import id_loss, sdm_loss
from training.losses.cfam_losses import (
    hard_negative_indices,
    local_similarity,
    matching_loss,
    sdm_loss_from_similarity,
)
from training.losses.sdm import DEFAULT_TEMPERATURE
from training.methods.dual_encoder import DualEncoderMethod, id_classifier
from training.models.granularity_decoder import GranularityDecoder
from training.models.hard_negative_matcher import HardNegativeMatcher
from training.nam import equal_masking_probabilities, masking_seeds, sample_token_masking
from training.registry import METHODS

TEXT_AUG_SEED_PURPOSE = 5


class CfamParams(ConfigModel):
    """``method.params`` of ``cfam`` (defaults: seed 004 §4.4, §5.1)."""

    gs_weight: float = Field(1.0, ge=0)
    ls_weight: float = Field(1.0, ge=0)  # λ1
    m_weight: float = Field(1.0, ge=0)  # λ2
    cid_weight: float = Field(1.0, ge=0)  # λ3
    num_queries: int = Field(16, ge=1)
    decoder_dim: int = Field(512, ge=1)
    decoder_depth: int = Field(2, ge=1)
    decoder_heads: int = Field(8, ge=1)
    matcher_depth: int = Field(2, ge=1)
    temperature: float = Field(DEFAULT_TEMPERATURE, gt=0)
    exclude_same_identity_negatives: bool = True
    text_aug_prob: float = Field(0.15, ge=0, le=1)  # §5.1 "random masking and replacement" (rates: ours)
    text_aug_mask_fraction: float = Field(0.8, ge=0, le=1)
    text_aug_random_fraction: float = Field(0.1, ge=0, le=1)
    text_aug_seed: int = 0


@METHODS.register("cfam")
class CfamMethod(DualEncoderMethod):
    """CLIP dual encoder + granularity decoder (L_ls) + hard-negative matcher (L_m) + L_gs + L_cid."""

    method_name = "cfam"
    params_model = CfamParams
    params: CfamParams

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        p = self.params
        if p.decoder_dim % p.decoder_heads:
            raise ConfigError(f"cfam: decoder_dim {p.decoder_dim} not divisible by decoder_heads {p.decoder_heads}")
        if p.text_aug_mask_fraction + p.text_aug_random_fraction > 1:
            raise ConfigError("method.params.text_aug_mask_fraction + text_aug_random_fraction must be <= 1")
        width = self.backbone.embed_dim
        self.decoder: GranularityDecoder | None = None
        self.matcher: HardNegativeMatcher | None = None
        if p.ls_weight > 0 or p.m_weight > 0:
            self.decoder = GranularityDecoder(width, p.decoder_dim, p.num_queries, p.decoder_depth, p.decoder_heads)
        if p.m_weight > 0:
            self.matcher = HardNegativeMatcher(p.decoder_dim, p.matcher_depth, p.decoder_heads)
        self.classifier: nn.Linear | None = None
        if p.cid_weight > 0:
            self.classifier = id_classifier(width, self.num_classes)

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        """§5.1: the pretrained CLIP towers vs the randomly initialised modules (own LR via ``optim.group_lr``)."""
        new = [m for m in (self.decoder, self.matcher, self.classifier) if m is not None]
        return {"pretrained": list(self.backbone.parameters()),
                "new": [q for m in new for q in m.parameters()]}

    def augment_text(self, tokens: torch.Tensor, caption_ids: torch.Tensor | None) -> torch.Tensor:
        """§5.1 text augmentation (class docstring): random masking and replacement of word tokens."""
        p = self.params
        if p.text_aug_prob <= 0:
            return tokens
        probs = equal_masking_probabilities(self.tokenizer.word_token_mask(tokens), p.text_aug_prob)
        seeds = (masking_seeds(caption_ids, self.epoch, p.text_aug_seed, TEXT_AUG_SEED_PURPOSE)
                 if caption_ids is not None else None)
        return sample_token_masking(tokens, probs, self.tokenizer.mask_token_id, seeds=seeds,
                                    mask_fraction=p.text_aug_mask_fraction,
                                    random_fraction=p.text_aug_random_fraction).tokens

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        p = self.params
        images, tokens, person_ids = batch["images"], batch["text_tokens"], batch["person_ids"]
        if self.training:
            tokens = self.augment_text(tokens, batch.get("caption_ids"))
        image_tokens, _ = self.backbone.image_tokens(images)
        text_tokens, _ = self.backbone.text_tokens(tokens)
        image_global = image_tokens[:, 0]
        text_global = self.backbone.pool_text(text_tokens, tokens)
        out: dict[str, torch.Tensor] = {}
        out["gs_loss"] = p.gs_weight * sdm_loss(image_global, text_global, person_ids, p.temperature)
        if self.classifier is not None:
            out["cid_loss"] = p.cid_weight * id_loss(
                self.classifier(image_global), self.classifier(text_global), person_ids
            )
        if self.decoder is None:
            return out
        v_bar = self.decoder(image_tokens)
        w_bar = self.decoder(text_tokens, padding=tokens == self.tokenizer.pad_token_id)
        if p.ls_weight > 0:
            out["ls_loss"] = p.ls_weight * sdm_loss_from_similarity(
                local_similarity(v_bar, w_bar), person_ids, p.temperature
            )
        if self.matcher is not None:
            with torch.no_grad():
                global_sim = torch.nn.functional.normalize(image_global.float(), dim=-1) @ (
                    torch.nn.functional.normalize(text_global.float(), dim=-1).t()
                )
            ids = person_ids if p.exclude_same_identity_negatives else None
            neg_text, neg_image, image_ok, text_ok = hard_negative_indices(global_sim, ids)
            v_pairs = torch.cat([v_bar, v_bar, v_bar[neg_image]], dim=0)
            w_pairs = torch.cat([w_bar, w_bar[neg_text], w_bar], dim=0)
            b = v_bar.shape[0]
            labels = torch.cat([torch.ones(b), torch.zeros(2 * b)]).to(v_bar.device)
            valid = torch.cat([torch.ones(b, dtype=torch.bool, device=v_bar.device), image_ok, text_ok])
            logits = self.matcher(v_pairs, w_pairs)
            out["m_loss"] = p.m_weight * matching_loss(logits, labels, valid)
            out["m_acc"] = (((logits > 0).float() == labels)[valid]).float().mean().detach()
        return out
