"""The captioner's architecture: what the trainer needs to know of a standard transformers VLM that vLLM
serves unchanged — how to build and save it, how images become the vision tower's input, where the tower
ends and the projector begins, and where the image tokens sit in the language model's positions.

Two are registered (``CaptionerConfig.arch``):

* ``llava`` (:mod:`caption_gen.captioner.arch_llava`) — ``LlavaForConditionalGeneration``: a CLIP tower on a
  square image, one language-model token per patch (the tower's resolution sets the LM's sequence length);
* ``qwen2vl`` (:mod:`caption_gen.captioner.arch_qwen2vl`) — ``Qwen2VLForConditionalGeneration``: a ViT on the
  image at its own aspect ratio, and a 2 × 2 patch merger before the LM (a quarter of the tokens per patch).

The trainer's common path, per step: ``tower_tokens`` (frozen and cached in the joint stage) → ``project``
(trained) → the ``<image>`` positions of the LM's input embeddings → ``model.model.language_model`` with the
positions of :meth:`CaptionerArch.lm_positions` → ``model.lm_head`` at the answer positions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from caption_gen.captioner.config import CaptionerConfig

#: vLLM's CPU attention supports this head size (``notes/vllm-cpu.md``); the text model uses it.
HEAD_DIM = 64


class CaptionerArch(ABC):
    """One VLM architecture, sized by a :class:`~caption_gen.captioner.config.CaptionerConfig`."""

    name: str
    #: ``config.json``'s ``model_type`` of a saved model of this architecture
    model_type: str
    #: the tokenizer's special tokens (first: unknown; the trainer adds ``<s>``, ``</s>``, ``<pad>`` roles)
    specials: tuple[str, ...]
    #: the chat template the engine renders (user turn with one image, then the instruction)
    chat_template: str

    def __init__(self, cfg: CaptionerConfig):
        self.cfg = cfg

    @abstractmethod
    def build_model(self, tokenizer: Any, seed: int) -> Any:
        """A randomly initialised model (seeded) of the config's sizes."""

    @abstractmethod
    def load_model(self, folder: Path) -> Any:
        """A saved captioner's model (``init_from``)."""

    @abstractmethod
    def build_processor(self, tokenizer: Any, image_size: tuple[int, int]) -> Any:
        """The processor saved with the model (the engine preprocesses images with it); ``image_size`` is the
        training images' (height, width)."""

    @abstractmethod
    def image_pixels(self, processor: Any, images: list[Any], names: list[str]) -> Any:
        """The processed images ``(n, …)`` in the layout :meth:`tower_tokens` and :meth:`mirror` read;
        every image must give the same number of image tokens (an :class:`~pedes_core.errors.InputError`
        naming the first one that does not)."""

    @abstractmethod
    def mirror(self, pixels: Any) -> Any:
        """``pixels`` of left–right mirrored images (what the processor gives for the mirrored images)."""

    @abstractmethod
    def tower(self, model: Any) -> Any:
        """The vision tower's module (trained in the vision stage, frozen in the joint stage)."""

    @abstractmethod
    def projector(self, model: Any) -> Any:
        """The module between the tower's tokens and the language model (trained in both stages)."""

    @abstractmethod
    def tower_tokens(self, model: Any, pixels: Any) -> Any:
        """The tower's output tokens ``(batch, patches, vision_hidden)`` — what the projector reads."""

    @abstractmethod
    def project(self, model: Any, tokens: Any) -> Any:
        """The image tokens the language model reads, ``(batch, image_tokens, text_hidden)``."""

    def image_token_id(self, model: Any) -> int:
        return int(model.config.image_token_id)

    def lm_positions(self, model: Any, prefix_ids: list[int], positions: Any) -> Any:
        """The language model's ``position_ids`` for packed rows whose 1-D ``positions`` count from the
        start of a prompt; ``prefix_ids`` is the prompts' common prefix (it holds every image token)."""
        return positions

    @abstractmethod
    def save(self, model: Any, processor: Any, out: Path) -> None:
        """``save_pretrained`` of weights, configs, processor, tokenizer and chat template, in the layout
        vLLM loads."""


def build_arch(cfg: CaptionerConfig) -> CaptionerArch:
    """The :class:`CaptionerArch` named by ``cfg.arch``."""
    if cfg.arch == "llava":
        from caption_gen.captioner.arch_llava import LlavaArch

        return LlavaArch(cfg)
    if cfg.arch == "qwen2vl":
        from caption_gen.captioner.arch_qwen2vl import Qwen2VLArch

        return Qwen2VLArch(cfg)
    raise ValueError(f"arch must be 'llava' or 'qwen2vl', got {cfg.arch!r}")


def check_head_dim(text_hidden: int) -> int:
    """Attention heads of a text model of width ``text_hidden`` at :data:`HEAD_DIM`."""
    if text_hidden % HEAD_DIM:
        raise ValueError(f"text_hidden must be a multiple of {HEAD_DIM} (vLLM CPU attention head size)")
    return text_hidden // HEAD_DIM


def save_with_generation_ids(model: Any, processor: Any, out: Path) -> None:
    """``save_pretrained`` of model, processor and tokenizer, the generation config ending at ``</s>``."""
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config.eos_token_id = model.config.text_config.eos_token_id
    model.generation_config.pad_token_id = model.config.text_config.pad_token_id
    model.save_pretrained(out)
    processor.save_pretrained(out)
    processor.tokenizer.save_pretrained(out)
