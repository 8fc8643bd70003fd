"""Seed 002 (LUPerson-MLLM) training methods on the CLIP dual encoder.

Registered in :data:`training.registry.METHODS`:

``sdm``
    Baseline dual encoder: SDM between ``v_cls`` and ``t_eos`` of the full caption (+ optional ITC,
    ID). No masking.
``nam_sdm``
    Seed 002 pretraining (§3.2-3.3): the caption is masked with NAM (``masking: nam``) or equal
    probabilities (``masking: em``, the ablation); SDM is computed on ``(v_cls, t'_eos)`` of the
    masked caption ``T^nam``. With NAM the unmasked ``T^full`` is run through the first ``l`` text
    blocks without gradient in the same step; its layer-l tokens are compared with the image's
    layer-l patch tokens (from the same image pass) to give ``r``, stored per caption and used to
    mask that caption in a later epoch (its latest ``r``; ``p`` while it has none; see
    :mod:`training.nam.store`). :meth:`NamSdmMethod.epoch_stats` reports ``nam_coverage``, the share of
    the epoch's captions masked from a stored ``r``. Optional MLM loss on ``T^nam`` (Table 2 ablation).
``irra``
    IRRA-style fine-tuning: SDM + ID + MLM (15 % BERT masking of a second copy of the caption,
    predicted through the cross-modal transformer), SDM/ID on the unmasked caption.

Every constructor takes ``model``, ``num_classes``, ``num_captions``, ``tokenizer`` and the recipe's
``method.params`` (validated by a pydantic model; unknown keys are errors). Heads exist only when
their loss weight is > 0 and CLIP's ``logit_scale`` is frozen, so every parameter gets a gradient in
every step: DDP runs with ``find_unused_parameters=False``. Masks are drawn per caption from
(``mask_seed``, epoch, caption id) — identical for any rank count and on resume.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from pedes_core.configuration import ConfigModel
from pedes_core.errors import ConfigError
from training.losses import DEFAULT_TEMPERATURE, id_loss, itc_loss, mlm_accuracy, mlm_loss, sdm_loss
from training.losses.mlm import IGNORE_INDEX
from training.methods.base import TrainingMethod, parse_method_params
from training.models.clip_backbone import ClipBackbone
from training.models.config import ModelConfig
from training.models.cross_modal import CrossModalEncoder, MlmHead
from training.nam import (
    DEFAULT_MASK_RATIO,
    NoiseStore,
    equal_masking_probabilities,
    masking_probabilities,
    masking_seeds,
    sample_token_masking,
    token_noise,
)
from training.nam.store import dist_rank_world
from training.registry import METHODS
from training.tokenization import ClipTokenizer

log = logging.getLogger(__name__)

NAM_SEED_PURPOSE = 1
IRRA_SEED_PURPOSE = 2
ID_CLASSIFIER_INIT_STD = 0.001  # IRRA's classifier init


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


class NamSdmParams(SdmParams):
    """``method.params`` of ``nam_sdm``: ``masking`` nam | em; ``mlm_weight`` > 0 adds the MLM ablation."""

    masking: Literal["nam", "em"] = "nam"


class IrraParams(SdmParams):
    """``method.params`` of ``irra`` (IRRA defaults: SDM + ID + MLM, each weight 1)."""

    id_weight: float = Field(1.0, ge=0)
    mlm_weight: float = Field(1.0, ge=0)


@dataclass
class LoadReport:
    """What :meth:`ClipMethod.load_pretrained` did with each checkpoint key."""

    loaded: list[str] = field(default_factory=list)
    skipped_shape: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


class ClipMethod(TrainingMethod):
    """Shared parts: backbone, optional ID classifier / cross-modal MLM head, global losses."""

    method_name = "clip"
    params_model: type[SdmParams] = SdmParams

    def __init__(
        self,
        *,
        model: ModelConfig,
        num_classes: int,
        num_captions: int,
        tokenizer: ClipTokenizer,
        **params: Any,
    ) -> None:
        super().__init__()
        self.params = parse_method_params(self.params_model, params, self.method_name)
        if model.context_length != tokenizer.context_length:
            raise ConfigError(
                f"model.context_length {model.context_length} != tokenizer context {tokenizer.context_length}"
            )
        if num_classes < 1 or num_captions < 1:
            raise ConfigError(f"num_classes ({num_classes}) and num_captions ({num_captions}) must be >= 1")
        self.model_config = model
        self.num_classes = num_classes
        self.num_captions = num_captions
        self.tokenizer = tokenizer
        self.epoch = 0
        self.backbone = ClipBackbone(model, tokenizer.vocab_size)
        width = self.backbone.embed_dim
        self.classifier: nn.Linear | None = None
        if self.params.id_weight > 0:
            self.classifier = nn.Linear(width, num_classes)
            nn.init.normal_(self.classifier.weight, std=ID_CLASSIFIER_INIT_STD)
            nn.init.zeros_(self.classifier.bias)
        self.cross_modal: CrossModalEncoder | None = None
        self.mlm_head: MlmHead | None = None
        if self.params.mlm_weight > 0:
            self.cross_modal = CrossModalEncoder(width, self.params.cmt_depth)
            self.mlm_head = MlmHead(width, tokenizer.vocab_size, self.params.cmt_depth)

    # --- encoders (evaluator interface) -------------------------------------------------------
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone.encode_image(images)

    def encode_text(self, text_tokens: torch.Tensor) -> torch.Tensor:
        return self.backbone.encode_text(text_tokens)

    # --- hooks -----------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        self.epoch = epoch

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

    # --- fine-tuning from a pretrained run -----------------------------------------------------
    def load_pretrained(self, path: Path | str) -> LoadReport:
        """Load weights from an engine checkpoint (``{"model": state_dict}``, ``weights_only=True``).

        Keys whose shapes differ (e.g. an ID classifier for another number of identities) are
        skipped and left at their initialisation, as are keys absent from the checkpoint."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"pretrained checkpoint not found: {path}")
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ConfigError(f"{path}: not a loadable checkpoint ({exc})") from None
        if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
            raise ConfigError(f"{path}: expected a checkpoint with a 'model' state dict")
        state = {k.removeprefix("module."): v for k, v in checkpoint["model"].items()}
        own = self.state_dict()
        report = LoadReport()
        loadable = {}
        for key, value in state.items():
            if key not in own:
                report.unexpected.append(key)
            elif tuple(own[key].shape) != tuple(value.shape):
                report.skipped_shape.append(key)
            else:
                loadable[key] = value
                report.loaded.append(key)
        if not loadable:
            raise ConfigError(f"{path}: no parameter matches this model (arch/method mismatch?)")
        self.load_state_dict(loadable, strict=False)
        report.missing = [k for k in own if k not in loadable]
        if report.skipped_shape:
            log.warning("load_pretrained: skipped (shape differs): %s", ", ".join(report.skipped_shape))
        if report.missing:
            log.info(
                "load_pretrained: %d keys kept at init: %s", len(report.missing), ", ".join(report.missing)
            )
        return report


@METHODS.register("sdm")
class SdmMethod(ClipMethod):
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


@METHODS.register("nam_sdm")
class NamSdmMethod(ClipMethod):
    """Seed 002 pretraining: SDM on (image, NAM- or EM-masked caption); see the module docstring."""

    method_name = "nam_sdm"
    params_model = NamSdmParams

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_dir: Path | None = None
        self._store: NoiseStore | None = None
        self._pending_store_state: dict[str, Any] | None = None

    @property
    def uses_nam(self) -> bool:
        return self.params.masking == "nam"

    # --- NAM store lifecycle ------------------------------------------------------------------
    def set_run_dir(self, path: Path | str) -> None:
        """Directory for the memory-mapped noise store (``<path>/nam_store``); call before training."""
        self.run_dir = Path(path)

    def _noise_store(self) -> NoiseStore:
        if self._store is None:
            if self.run_dir is None:
                if dist_rank_world()[1] > 1:
                    raise RuntimeError(
                        "nam_sdm under DDP needs set_run_dir(shared directory) before training"
                    )
                self.run_dir = Path(tempfile.mkdtemp(prefix="pedes-nam-"))
                log.warning("nam_sdm: no run dir set; NAM store in %s", self.run_dir)
            self._store = NoiseStore(self.num_captions, self.model_config.context_length, self.run_dir)
            if self._pending_store_state is not None:
                self._store.load_state(self._pending_store_state)
                self._pending_store_state = None
        if self._store.epoch != self.epoch:
            self._store.start_epoch(self.epoch)
        return self._store

    def on_epoch_start(self, epoch: int) -> None:
        super().on_epoch_start(epoch)
        if self.uses_nam:
            self._noise_store()

    def on_epoch_end(self, epoch: int) -> None:
        if self.uses_nam and self._store is not None:
            self._store.end_epoch()

    def epoch_stats(self) -> dict[str, float]:
        """``nam_coverage`` of the epoch just ended (after :meth:`on_epoch_end`; rank 0, where the
        store merges): share of its captions masked from a stored ``r`` rather than with ``p``."""
        store = self._store
        if not self.uses_nam or store is None or store.last_coverage is None:
            return {}
        return {"nam_coverage": float(store.last_coverage)}

    def extra_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"epoch": self.epoch}
        if self._store is not None:
            state["nam_store"] = self._store.state()
        elif self._pending_store_state is not None:
            state["nam_store"] = self._pending_store_state
        return state

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.epoch = int(state.get("epoch", 0))
        store_state = state.get("nam_store")
        if store_state is None:
            return
        if self._store is not None:
            self._store.load_state(store_state)
        else:
            self._pending_store_state = store_state

    # --- step --------------------------------------------------------------------------------
    def masking_probabilities_for(self, tokens: torch.Tensor, caption_ids: torch.Tensor) -> torch.Tensor:
        """Per-token masking probabilities of this step: NAM from each caption's latest ``r`` of an
        earlier epoch (captions never scored — all of them in the first epoch — use ``p``), or EM."""
        valid = self.tokenizer.word_token_mask(tokens)
        p = self.params.mask_ratio
        equal = equal_masking_probabilities(valid, p)
        if not self.uses_nam:
            return equal
        noise, seen = self._noise_store().read(caption_ids)
        noise, seen = noise.to(tokens.device), seen.to(tokens.device)
        return torch.where(seen[:, None], masking_probabilities(noise, valid, p), equal)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        images, tokens = batch["images"], batch["text_tokens"]
        caption_ids, person_ids = batch["caption_ids"], batch["person_ids"]
        backbone = self.backbone
        if not self.training:  # validation loss: the full caption, no store update
            image_tokens, _ = backbone.image_tokens(images)
            text_tokens, _ = backbone.text_tokens(tokens)
            return self._global_losses(
                image_tokens[:, 0], backbone.pool_text(text_tokens, tokens), person_ids
            )

        probabilities = self.masking_probabilities_for(tokens, caption_ids)
        masked = self._mask(tokens, probabilities, caption_ids, NAM_SEED_PURPOSE)
        layer = backbone.nam_layer if self.uses_nam else None
        image_tokens, image_layer = backbone.image_tokens(images, return_layer=layer)
        text_tokens, _ = backbone.text_tokens(masked.tokens)
        out = self._global_losses(
            image_tokens[:, 0], backbone.pool_text(text_tokens, masked.tokens), person_ids
        )
        if self.cross_modal is not None:
            out.update(self._mlm_losses(text_tokens, image_tokens, masked.labels))
        valid = self.tokenizer.word_token_mask(tokens)
        out["mask_ratio"] = (masked.selected.sum() / valid.sum().clamp_min(1)).detach().float()
        if self.uses_nam:
            assert layer is not None and image_layer is not None
            with torch.no_grad():
                # T^full through the first l blocks only; trailing padding columns are cut first
                # (exact: the text transformer is causal, so no token attends to later ones)
                length = int((tokens != self.tokenizer.pad_token_id).any(dim=0).nonzero().max()) + 1
                full_layer = backbone.text_layer_tokens(tokens[:, :length], layer)
                noise = token_noise(
                    backbone.project_text_tokens(full_layer),
                    backbone.project_image_tokens(image_layer.detach()[:, 1:]),  # patches, no [CLS]
                    valid[:, :length],
                )
                noise = torch.nn.functional.pad(noise, (0, tokens.shape[1] - length))
            self._noise_store().write(caption_ids, noise)
            out["nam_noise"] = (noise.sum() / valid.sum().clamp_min(1)).float()
        return out


@METHODS.register("irra")
class IrraMethod(ClipMethod):
    """IRRA-style fine-tuning: SDM + ID on the full caption, MLM on a BERT-masked copy (p = 0.15)."""

    method_name = "irra"
    params_model = IrraParams

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        images, tokens = batch["images"], batch["text_tokens"]
        backbone = self.backbone
        image_tokens, _ = backbone.image_tokens(images)
        text_tokens, _ = backbone.text_tokens(tokens)
        out = self._global_losses(
            image_tokens[:, 0], backbone.pool_text(text_tokens, tokens), batch["person_ids"]
        )
        if self.cross_modal is not None:
            valid = self.tokenizer.word_token_mask(tokens)
            probabilities = equal_masking_probabilities(valid, self.params.mask_ratio)
            masked = self._mask(tokens, probabilities, batch["caption_ids"], IRRA_SEED_PURPOSE)
            mlm_text_tokens, _ = backbone.text_tokens(masked.tokens)
            out.update(self._mlm_losses(mlm_text_tokens, image_tokens, masked.labels))
        return out
