"""The CLIP dual encoder shared by the CLIP-based methods (``sdm``, ``nam_sdm``, ``irra``, ``cfam``,
``sew_mcm``, ``weak_dual_granularity``): one :class:`~training.models.clip_backbone.ClipBackbone`
(image tower → ``v_cls``, text tower → ``t_eos``; seed 002 §3.3), the evaluator interface
(``encode_image`` / ``encode_text``), the epoch counter the masking seeds read, and fine-tuning from an
engine checkpoint (:meth:`DualEncoderMethod.load_pretrained`).

A subclass sets ``method_name`` and ``params_model`` and builds its own heads *after*
``super().__init__`` (so the backbone is always initialised first from the seeded RNG, and parameter
names — ``backbone.*``, then the heads — are the same in every method's checkpoints).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import BaseModel
from torch import nn

from pedes_core.errors import ConfigError
from training.methods.base import TrainingMethod, parse_method_params
from training.models.clip_backbone import ClipBackbone
from training.models.config import ModelConfig
from training.tokenization import ClipTokenizer

log = logging.getLogger(__name__)

#: IRRA's initialisation of the identity classifier (normal, std 0.001; zero bias)
ID_CLASSIFIER_INIT_STD = 0.001


def id_classifier(width: int, num_classes: int) -> nn.Linear:
    """The identity classifier of the ID loss, initialised as IRRA does."""
    classifier = nn.Linear(width, num_classes)
    nn.init.normal_(classifier.weight, std=ID_CLASSIFIER_INIT_STD)
    nn.init.zeros_(classifier.bias)
    return classifier


@dataclass
class LoadReport:
    """What :meth:`DualEncoderMethod.load_pretrained` did with each checkpoint key."""

    loaded: list[str] = field(default_factory=list)
    skipped_shape: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


class DualEncoderMethod(TrainingMethod):
    """Backbone, typed params, evaluator encoders, epoch counter and ``load_pretrained`` (module docstring)."""

    method_name: ClassVar[str] = "dual_encoder"
    params_model: ClassVar[type[BaseModel]]
    #: False for methods trained from pairing only (no ``num_classes`` needed)
    uses_identity_labels: ClassVar[bool] = True

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
        if num_captions < 1 or (self.uses_identity_labels and num_classes < 1):
            raise ConfigError(f"num_classes ({num_classes}) and num_captions ({num_captions}) must be >= 1")
        self.model_config = model
        self.num_classes = num_classes
        self.num_captions = num_captions
        self.tokenizer = tokenizer
        self.epoch = 0
        self.backbone = ClipBackbone(model, tokenizer.vocab_size)

    # --- encoders (evaluator interface) -------------------------------------------------------
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone.encode_image(images)

    def encode_text(self, text_tokens: torch.Tensor) -> torch.Tensor:
        return self.backbone.encode_text(text_tokens)

    # --- hooks -----------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        self.epoch = epoch

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
