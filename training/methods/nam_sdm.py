"""Seed 002 pretraining (§3.2-3.3): ``nam_sdm``.

The caption is masked with NAM (``masking: nam``) or equal probabilities (``masking: em``, the
ablation); SDM is computed on ``(v_cls, t'_eos)`` of the masked caption ``T^nam``. With NAM the unmasked
``T^full`` is run through the first ``l`` text blocks without gradient in the same step; its layer-l
tokens are compared with the image's layer-l patch tokens (from the same image pass) to give ``r``,
stored per caption and used to mask that caption in a later epoch (its latest ``r``; ``p`` while it
has none; see :mod:`training.nam.store`). :meth:`NamSdmMethod.epoch_stats` reports ``nam_coverage``, the
share of the epoch's captions masked from a stored ``r``. Optional MLM loss on ``T^nam`` (Table 2
ablation). Shared parts: :mod:`training.methods.sdm`.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Literal

import torch

from training.methods.sdm import SdmFamilyMethod, SdmParams
from training.nam import (
    NoiseStore,
    equal_masking_probabilities,
    masking_probabilities,
    token_noise,
)
from training.nam.store import dist_rank_world
from training.registry import METHODS

log = logging.getLogger(__name__)

NAM_SEED_PURPOSE = 1


class NamSdmParams(SdmParams):
    """``method.params`` of ``nam_sdm``: ``masking`` nam | em; ``mlm_weight`` > 0 adds the MLM ablation."""

    masking: Literal["nam", "em"] = "nam"


@METHODS.register("nam_sdm")
class NamSdmMethod(SdmFamilyMethod):
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
            full = backbone.trim_padding(tokens)
            text_tokens, _ = backbone.text_tokens(full)
            return self._global_losses(
                image_tokens[:, 0], backbone.pool_text(text_tokens, full), person_ids
            )

        probabilities = self.masking_probabilities_for(tokens, caption_ids)
        masked = self._mask(tokens, probabilities, caption_ids, NAM_SEED_PURPOSE)
        layer = backbone.nam_layer if self.uses_nam else None
        image_tokens, image_layer = backbone.image_tokens(images, return_layer=layer)
        # without an MLM head only the pooled feature is read, so the padding columns are cut (exact)
        text_in = masked.tokens if self.cross_modal is not None else backbone.trim_padding(masked.tokens)
        text_tokens, _ = backbone.text_tokens(text_in)
        out = self._global_losses(
            image_tokens[:, 0], backbone.pool_text(text_tokens, text_in), person_ids
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
                length = backbone.trim_padding(tokens, self.tokenizer.pad_token_id).shape[1]
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
