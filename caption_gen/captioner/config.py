"""``CaptionerConfig``: one captioner training run (``pedes captioner train``, the demo, tests)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from pedes_core.configuration import ConfigModel, ConfigPath

#: bump when the training code changes what a config produces (invalidates cached models).
TRAINER_VERSION = 7


def default_cache_dir() -> Path:
    """``$PEDES_CACHE/captioners``, else ``~/.cache/pedes-forge/captioners`` (never inside the checkout)."""
    root = os.environ.get("PEDES_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "pedes-forge") / "captioners"


class CaptionerConfig(ConfigModel):
    """What to train and how. Default: a 1.63 M-parameter Qwen2-VL (ViT 3×128 on 192 × 96 pixels, patch 16,
    2 × 2 merger → 18 image tokens; Qwen2 text model 3×128) trained on 8,000 rendered people × 2 images in two
    stages: 3,000 vision steps (auxiliary attribute loss only, batch 32, half the images mirrored) then 5,400
    joint steps of 16 examples with the vision tower frozen (LLaVA's recipe; its features cached), grouped by
    length 8 steps at a time. Measured on two idle cores (2026-12-07): 8 min 33 s from scratch — rendering
    20 s, image loading 18 s, vision stage 220 s, joint stage 256 s (47 ms a step) — for 87.2–89.3 % /
    88.5–88.7 % static attribute accuracy on two held-out sets (two benchmark runs of the same weights) (``benchmarks/RESULTS.md``, "Trained captioner quality";
    the LLaVA default before it: 12 min 21 s, 82.8 % / 83.9 % on the same host)."""

    #: a ``pedes synth`` folder; None → render ``synth_identities`` people with the reserved seed
    #: ``CAPTIONER_SEED_BASE + seed`` (:mod:`caption_gen.captioner.records`).
    synthetic: ConfigPath | None = None
    #: splits of ``synthetic`` to train on (a folder's val/test identities stay unseen).
    splits: list[str] = Field(default_factory=lambda: ["train"])
    synth_identities: int = Field(8000, ge=1)
    synth_images_per_identity: int = Field(2, ge=1)
    #: where the trained model is written (None → only the cache folder).
    out: ConfigPath | None = None
    cache_dir: ConfigPath | None = None
    steps: int = Field(5400, ge=1)
    seed: int = 0
    #: share of target attribute values replaced by wrong ones (:mod:`caption_gen.captioner.noise`).
    noise: float = Field(0.0, ge=0.0, le=1.0)
    #: examples (image, instruction, answer) per joint step; a multiple of ``examples_per_image``.
    batch_size: int = Field(16, ge=1)
    #: examples drawn per image in a joint step, packed into one sequence that computes the image tokens
    #: once (:func:`caption_gen.captioner.examples.pack_examples`; the loss is that of separate sequences).
    #: 4 makes an example ~1.6× cheaper, but the examples of one image teach the language model to read the
    #: image about as much as one does (measured: 3,600 steps of 4 images × 4 → 70.8 % static attribute
    #: accuracy, of 16 images × 1 → 82.6 %), so the default draws a new image for every example.
    examples_per_image: int = Field(1, ge=1)
    #: joint steps whose examples are drawn at once and regrouped by length (:meth:`caption_gen.captioner.
    #: examples.BatchSampler.sample_by_length`), so a step pads less; 1 = every step draws its own examples.
    length_groups: int = Field(8, ge=1)
    lr: float = Field(2e-3, gt=0)
    warmup_steps: int = Field(60, ge=0)
    weight_decay: float = Field(0.01, ge=0)
    #: weight of the auxiliary attribute-classification loss on the projected image tokens (0 = off).
    aux_weight: float = Field(0.5, ge=0)
    #: how the auxiliary loss reads the tokens (:mod:`caption_gen.captioner.aux_heads`): ``linear`` over all
    #: of them, or ``attention`` (one learned query per attribute, as an attention head of the LM reads).
    aux_head: Literal["linear", "attention"] = "linear"
    #: steps of the vision stage before the joint one: vision tower + projector trained on the auxiliary
    #: attribute loss alone (no language model, so a step is cheap); 0 = joint training only.
    vision_steps: int = Field(3000, ge=0)
    vision_batch_size: int = Field(32, ge=1)
    #: probability that a vision-stage image is mirrored left–right (augmentation; 0 = off).
    vision_hflip: float = Field(0.5, ge=0.0, le=1.0)
    #: the joint stage keeps the vision tower fixed (LLaVA's recipe) and reads its image features from a
    #: cache computed once, so a joint step trains projector + language model only (and costs less).
    freeze_vision: bool = True
    #: sampling weights of the kinds static, dynamic, identity, clothing.
    kind_weights: list[float] = Field(default_factory=lambda: [0.2, 0.4, 0.2, 0.2], min_length=4, max_length=4)
    #: the VLM (:mod:`caption_gen.captioner.architecture`): ``llava`` (one LM token per tower patch, square
    #: ``image_size``) or ``qwen2vl`` (2 × 2 patches merged per LM token, aspect kept within ``image_pixels``).
    arch: Literal["llava", "qwen2vl"] = "qwen2vl"
    #: llava only: the side of the square every image is resized to (None: 128).
    image_size: int | None = Field(None, ge=32)
    #: qwen2vl only: the pixel budget of Qwen2-VL's dynamic resolution — each image is resized, aspect kept, to
    #: the largest multiple of ``patch_size × 2`` per side within it (None: 20,000, which turns the 256 × 128
    #: pedestrians into 192 × 96: 12 × 6 patches of 16, 18 image tokens).
    image_pixels: int | None = Field(None, ge=1024)
    #: LLaVA gives the language model one token per patch, so the patch sets both the tower's resolution and
    #: the joint step's cost: 32 (16 image tokens) trains in 646 s from scratch but reaches 77.3 % static
    #: attribute accuracy — a 32-pixel patch loses bag, garment type and hair (``benchmarks/RESULTS.md``,
    #: "Session 10"; ``benchmarks/probe_captioner_tower.py``).
    patch_size: int = Field(16, ge=4)
    vision_hidden: int = Field(128, ge=32)
    vision_layers: int = Field(3, ge=1)
    text_hidden: int = Field(128, ge=64)
    text_layers: int = Field(3, ge=1)
    vocab_size: int = Field(1024, ge=300)
    #: continue from the weights (and tokenizer) of an earlier captioner folder instead of random ones.
    init_from: ConfigPath | None = None
    #: torch threads (None: torch's default).
    threads: int | None = Field(None, ge=1)
    log_every: int = Field(50, ge=1)

    @model_validator(mode="after")
    def _whole_images_per_batch(self) -> CaptionerConfig:
        if self.batch_size % self.examples_per_image:
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of examples_per_image "
                             f"({self.examples_per_image})")
        return self

    @model_validator(mode="after")
    def _resolution_of_the_arch(self) -> CaptionerConfig:
        """The resolution field of the other architecture cannot be honoured: setting it is an error."""
        other, mine = ("image_pixels", "image_size") if self.arch == "llava" else ("image_size", "image_pixels")
        if getattr(self, other) is not None:
            raise ValueError(f"{other} does not apply to arch {self.arch!r} (its resolution is {mine})")
        return self

    @property
    def square_side(self) -> int:
        """llava: the resolved ``image_size``."""
        return self.image_size if self.image_size is not None else 128

    @property
    def pixel_budget(self) -> int:
        """qwen2vl: the resolved ``image_pixels``."""
        return self.image_pixels if self.image_pixels is not None else 20000

    def _arch_fields(self) -> dict[str, object]:
        """The architecture's fields as the cache keys hold them: a LLaVA key names its resolved
        ``image_size``, a Qwen2-VL key the arch and its resolved pixel budget."""
        if self.arch == "llava":
            return {"image_size": self.square_side}
        return {"arch": self.arch, "image_pixels": self.pixel_budget}

    def cache_key(self, data_fingerprint: str) -> str:
        """Hash of everything that changes the trained weights: the config (minus where outputs go and
        threads), the data and :data:`TRAINER_VERSION`."""
        body = self.model_dump(mode="json", exclude={"out", "cache_dir", "threads", "log_every", "synthetic",
                                                      "init_from", "arch", "image_size", "image_pixels"})
        body.update(self._arch_fields())
        init = None
        if self.init_from is not None:
            try:
                init = json.loads((Path(self.init_from) / "captioner.json").read_text())["key"]
            except (OSError, ValueError, KeyError):
                init = str(self.init_from)
        parts = {"config": body, "data": data_fingerprint, "v": TRAINER_VERSION}
        if init is not None:
            parts["init"] = init
        payload = json.dumps(parts, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def vision_stage_key(self, data_fingerprint: str) -> str | None:
        """Hash of what the vision stage's result depends on (the tower, the projector and the auxiliary head
        after ``vision_steps``): sizes of the tower and of the projector's output, the seed, the optimiser
        and schedule, the data. Captioners that differ only in their joint stage (steps, noise, kind weights,
        the language model's size) share it. None when there is no vision stage or the weights start from
        ``init_from``."""
        if not self.vision_steps or self.init_from is not None:
            return None
        fields = ("seed", "patch_size", "vision_hidden", "vision_layers", "text_hidden", "lr", "weight_decay",
                  "warmup_steps", "vision_steps", "vision_batch_size", "vision_hflip", "aux_head", "splits")
        body = {**{f: getattr(self, f) for f in fields}, **self._arch_fields()}
        payload = json.dumps({"vision": body, "data": data_fingerprint, "v": TRAINER_VERSION}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir is not None else default_cache_dir()
