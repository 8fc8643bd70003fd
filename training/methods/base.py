"""The contract between the engine and a training method.

A *method* is an ``nn.Module`` that owns its encoders, heads and losses. The engine
(``training.engine``) only knows this interface, so NAM pretraining, IRRA fine-tuning, BDAM,
Sew+MCM, CFAM and the weakly supervised method are all just registered methods.

Batch contract (a ``dict`` produced by ``training.data`` collate functions):

============== ============================ ===============================================
key            type                         meaning
============== ============================ ===============================================
images         float [B, 3, H, W]           normalized image tensor
text_tokens    long  [B, L]                 CLIP BPE ids, zero padded, L = context length
person_ids     long  [B]                    identity labels (train ids 0..N-1; for a corpus
                                            each image is its own identity)
caption_ids    long  [B]                    global index of the caption (NAM noise store row)
image_index    long  [B]                    global index of the image in the dataset
(optional)     ...                          method-specific extras, e.g. ``identity_tokens``,
                                            ``clothing_tokens``, ``augmented_images``
============== ============================ ===============================================

``forward(batch)`` returns a dict: every key ending in ``_loss`` is a scalar tensor summed by the
engine into the total loss (the method applies its own weights); other keys are logged scalars.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from pydantic import BaseModel, ValidationError
from torch import nn

from pedes_core.configuration import format_validation_error
from pedes_core.errors import ConfigError

P = TypeVar("P", bound=BaseModel)


def parse_method_params(params_model: type[P], params: dict[str, Any], name: str) -> P:
    """``method.params`` validated by the method's typed params model; errors name the method and field."""
    try:
        return params_model.model_validate(params)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, f"method {name!r} params")) from None


class TrainingMethod(nn.Module):
    """Base class; subclasses implement ``forward``, ``encode_image`` and ``encode_text``."""

    #: True when the method implements a stage-2 hook for ``eval.rerank_top_k > 0`` (else that option is
    #: a ConfigError): a list-level ``rerank(context: eval.inference.RerankContext) -> [Q, G]`` on the
    #: already-encoded features (Sew), or the pairwise :meth:`rerank_scores` (BDAM); see eval.inference.
    supports_rerank: bool = False
    #: the registered name (error messages) and the typed model of ``method.params`` (:meth:`from_config`)
    method_name: ClassVar[str] = "method"
    params_model: ClassVar[type[BaseModel] | None] = None

    @classmethod
    def from_config(cls, recipe: Any, num_classes: int, num_captions: int) -> TrainingMethod:
        """The method of a recipe (``model``, ``method.params``): the params are validated by
        :attr:`params_model` (a ConfigError names the method and field), then passed to the constructor with
        the CLIP tokenizer of the recipe's context length. The one place a method is built from config
        (``training.engine.trainer.build_method``)."""
        from training.tokenization import ClipTokenizer

        params = dict(recipe.method.params)
        if cls.params_model is not None:
            params = parse_method_params(cls.params_model, params, cls.method_name).model_dump()
        return cls(model=recipe.model, num_classes=num_classes, num_captions=num_captions,
                   tokenizer=ClipTokenizer(recipe.model.context_length), **params)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Global image embedding [B, D] (not necessarily normalized)."""
        raise NotImplementedError

    def encode_text(self, text_tokens: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Global text embedding [B, D] (not necessarily normalized)."""
        raise NotImplementedError

    # --- optional hooks -------------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        """Called by the engine before each epoch (0-based), e.g. NAM swaps its noise buffers."""

    def on_epoch_end(self, epoch: int) -> None:
        """Called by the engine after each epoch."""

    def extra_state(self) -> dict[str, Any]:
        """Non-parameter state to checkpoint (tensors/plain types only: loaded with weights_only=True)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

    def load_pretrained(self, path: Path | str) -> Any:
        """Initialise from an engine checkpoint (``method.pretrained``); methods that cannot say so."""
        raise ConfigError(f"method.pretrained: method {type(self).__name__} cannot load a pretrained checkpoint")

    def set_run_dir(self, path: Path | str) -> None:
        """Called once by the trainer with the run directory (e.g. NAM's noise store lives there)."""

    def rerank_scores(self, query_tokens: torch.Tensor, gallery_images: torch.Tensor) -> torch.Tensor | None:
        """Optional pairwise stage-2 scorer: one score per (query_tokens[p], gallery_images[p]) pair → [P].

        ``gallery_images`` rows come from the gallery cache of the evaluator's stage-1 pass (decoded
        tensors, or what an optional ``rerank_gallery_state(images)`` returned), never from disk."""
        return None
