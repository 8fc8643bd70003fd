"""``pedes repro`` configuration (``configs/repro.yaml``): the miniature world, the recipes and the seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from pedes_core.configuration import (
    ConfigModel,
    ConfigPath,
    ExistingPath,
    OutputPath,
    load_config,
    parse_overrides,
)


class WorldConfig(ConfigModel):
    """Sizes and seeds of the disjoint parts of the miniature world (:mod:`training.repro.world`).

    Person ids are disjoint by construction: the captioners are trained on their own synthetic people
    (``caption_gen.captioner``), source images start at ``source_first_id`` and the target benchmark at
    ``target_first_id``; each part is also drawn with its own seed."""

    source_identities: int = Field(600, ge=4)
    source_images_per_identity: int = Field(2, ge=1)
    source_seed: int = 101
    source_first_id: int = Field(100_000, ge=0)
    target_identities: int = Field(500, ge=10)
    target_images_per_identity: int = Field(4, ge=2)
    target_outfits_per_identity: int = Field(2, ge=1)
    target_seed: int = 202
    target_first_id: int = Field(200_000, ge=0)
    target_test_fraction: float = Field(0.2, gt=0, lt=1)
    #: rendered image size (height, width); the recipes resize to their own ``model.image_size``
    image_size: tuple[int, int] = (128, 64)


class CaptionerSpec(ConfigModel):
    """One trained captioner standing for one of the paper's MLLMs (seed 002 §3.1 uses two)."""

    name: str
    seed: int = 0
    noise: float = Field(0.0, ge=0, le=1)
    #: continue training the named captioner of ``bases`` or ``clean`` (``CaptionerConfig.init_from``) instead of
    #: training from random weights: a second or noisy captioner as a fine-tune of a clean one, at a
    #: fraction of the cost (``steps`` then says how many joint steps the continuation takes; it has no
    #: vision stage, ``vision_steps`` 0, and trains on the parent's rendered people with its own seed and
    #: noise). The named captioner must itself be trained from scratch. Mind the confound: the
    #: continuation has trained longer than its parent (measured: an undertrained clean captioner gains
    #: more from 300 extra steps than it loses to 30 % noise), so the defaults train noisy captioners
    #: from scratch with the clean ones' steps
    from_captioner: str | None = None
    #: training steps of this captioner (None: ``captioning.captioner.steps``, else the captioner default)
    steps: int | None = Field(None, ge=1)


class CaptioningConfig(ConfigModel):
    """How the source images are captioned: which captioners, kinds and engine limits."""

    #: the clean corpus (two captioners, as the paper's Qwen + Shikra)
    clean: list[CaptionerSpec] = Field(default_factory=lambda: [CaptionerSpec(name="cap-a", seed=0),
                                                                CaptionerSpec(name="cap-b", seed=1)], min_length=1)
    #: the noisy corpus: the same captioners trained with a share of wrong attribute words (``--noise``)
    noisy: list[CaptionerSpec] = Field(default_factory=lambda: [
        CaptionerSpec(name="cap-a-noisy", seed=0, noise=0.3), CaptionerSpec(name="cap-b-noisy", seed=1, noise=0.3)])
    #: parent captioners only (trained from scratch, captioning nothing): the clean and noisy captioners
    #: continue them (``from_captioner``), so a clean captioner and its noisy twin differ by the noise alone
    bases: list[CaptionerSpec] = Field(default_factory=list)
    kinds: list[str] = Field(default_factory=lambda: ["static", "dynamic"], min_length=1)
    #: further ``caption_gen.captioner.CaptionerConfig`` fields shared by every captioner (e.g. ``steps``;
    #: empty = the captioner's default size)
    captioner: dict[str, Any] = Field(default_factory=dict)
    #: where trained captioners are cached by a hash of their config and data (None = the captioner's
    #: default cache, ``$PEDES_CACHE/captioners`` or ``~/.cache/pedes-forge/captioners``, shared by runs)
    cache_dir: ConfigPath | None = None
    max_tokens: int = Field(64, ge=8)
    shard_size: int = Field(256, ge=1)
    max_attempts: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _known_sources(self) -> CaptioningConfig:
        for base in self.bases:
            if base.from_captioner is not None:
                raise ValueError(f"captioner {base.name!r} of 'bases': a base is trained from scratch "
                                 f"(drop from_captioner {base.from_captioner!r})")
        parents = {c.name: c.from_captioner for c in [*self.bases, *self.clean]}
        for spec in [*self.clean, *self.noisy]:
            if spec.from_captioner is not None and (spec.from_captioner not in parents or spec.from_captioner == spec.name):
                raise ValueError(f"captioner {spec.name!r}: from_captioner {spec.from_captioner!r} must name another "
                                 f"captioner of 'bases' or 'clean' ({sorted(parents)})")
            if spec.from_captioner is not None and parents[spec.from_captioner] is not None:
                raise ValueError(f"captioner {spec.name!r}: from_captioner {spec.from_captioner!r} is itself a "
                                 f"continuation (of {parents[spec.from_captioner]!r}); continue a captioner trained from scratch")
        names = [c.name for c in [*self.bases, *self.clean, *self.noisy]]
        if len(set(names)) != len(names):
            raise ValueError(f"captioner names must be unique, got {names}")
        return self


class ClothesChangeConfig(ConfigModel):
    """Seed 000's clothes-change comparison (:mod:`training.repro.clothes_change`)."""

    enabled: bool = True
    recipe: ExistingPath
    identities: int = Field(300, ge=10)
    images_per_identity: int = Field(4, ge=2)
    seed: int = 303
    first_id: int = Field(300_000, ge=0)
    epochs: int | None = Field(None, ge=1)


class ReproConfig(ConfigModel):
    """Everything ``pedes repro`` needs; ``quick`` variants shrink the sizes (``quick_overrides``)."""

    #: output folder; relative: against the current directory (``--out`` sets it)
    out: OutputPath = Path("repro-output")
    world: WorldConfig = Field(default_factory=WorldConfig)
    captioning: CaptioningConfig = Field(default_factory=CaptioningConfig)
    #: the CPU retrieval profile used for fine-tuning (and, with the method swapped, pretraining)
    recipe: ExistingPath
    #: ``--set``-style overrides of that profile (e.g. ``data.batch_size=16`` for a micro world)
    recipe_overrides: list[str] = Field(default_factory=list)
    #: ``--set``-style overrides of the *pretraining* recipes only, applied after the method swap (e.g.
    #: ``optim.lr=5e-4``): pretraining is SDM alone on image identities, without the fine-tuning's ID loss,
    #: and from random weights it needs its own rate (``benchmarks/RESULTS.md``, "Pretraining plateau")
    pretrain_overrides: list[str] = Field(default_factory=list)
    pretrain_epochs: int = Field(8, ge=1)
    finetune_epochs: int = Field(10, ge=1)
    seeds: int = Field(3, ge=1)
    #: NAM masking ratio p (seed 002 §4.3: 0.15)
    mask_ratio: float = Field(0.15, gt=0, lt=1)
    #: arms to run (names of :data:`training.repro.arms.ARMS`); empty = all
    arms: list[str] = Field(default_factory=list)
    clothes_change: ClothesChangeConfig | None = None
    #: training runs (arm × seed, clothes-change seeds) trained at the same time, each in its own worker
    #: process with an equal share of the cores as torch threads; 1 = one after the other in the flow's
    #: process. Tiny models use two threads poorly (2 cores: one 2-thread run 137 samples/s, two 1-thread
    #: runs side by side 2 × 100), so 2 on a 2-core machine trains the arms ≈ 1.45× faster. The results do
    #: not depend on it beyond floating-point summation order (a run is seeded and single-process).
    parallel_runs: int = Field(1, ge=1)

    @field_validator("recipe_overrides", "pretrain_overrides")
    @classmethod
    def _overrides_parse(cls, value: list[str]) -> list[str]:
        parse_overrides(value)  # a malformed KEY=VALUE fails at load, naming the item
        return value


def load_repro_config(path: str | Path, overrides: list[str] | None = None) -> ReproConfig:
    return load_config(ReproConfig, path, overrides or [])
