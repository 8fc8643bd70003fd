"""The typed training recipe (``configs/*.yaml``): one pydantic model per section, unknown keys are errors.

A recipe is ``model`` (the training core's :class:`~training.models.config.ModelConfig`), ``method``
(a registered method name + its params), ``data`` (a corpus or a benchmark source, batch, workers,
augmentation), ``optim``, ``schedule``, ``engine`` (device, AMP, accumulation, checkpoints, logging) and
``eval`` (validation-based model selection and the final test benchmarks).

Seed 002 §4.2 defaults: 384×128 images, 77 tokens, Adam at lr 1e-5 with cosine decay, batch 64 per
GPU, 30 epochs. Load with :func:`load_recipe` (``key=value`` overrides, errors naming file and field).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PositiveFloat, model_validator

from pedes_core.configuration import ConfigModel, ConfigPath, OutputPath, load_config
from training.models.config import ModelConfig

#: CLIP's image normalization (open_clip.constants OPENAI_DATASET_MEAN/STD).
CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)


class MethodConfig(ConfigModel):
    """``method:`` a name registered in :data:`training.registry.METHODS` and its keyword params.

    ``pretrained``: an engine checkpoint whose encoder weights initialise the method
    (``method.load_pretrained``), i.e. the fine-tune stage of seed 002 Table 4."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    pretrained: ConfigPath | None = None


class CorpusSourceConfig(ConfigModel):
    """A caption corpus (DESIGN.md §2): which captions are used for training."""

    root: ConfigPath
    image_root: ConfigPath | None = None  # default: the image root recorded in corpus.json
    kinds: list[str] | None = None  # None = every kind (seed 002: static, dynamic, ...)
    models: list[str] | None = None  # None = every captioning model
    require_validation: bool = True  # keep only captions with validation.passed
    cache_dir: ConfigPath | None = None  # where the memory-mapped caption index goes (default: run dir)
    # description kinds given per image as `<kind>_caption` strings (BDAM, seed 000 §3); not used as queries
    descriptions: list[Literal["identity", "clothing"]] | None = None
    # what a training identity is: every image its own (seed 002 §3.3), or the corpus' `person_id` column
    # (imported benchmarks, synth), which `data.sampler: pk` needs (BDAM's triplet, seed 000 Eq. 4)
    identities: Literal["image", "person_id"] = "image"


class BenchmarkSourceConfig(ConfigModel):
    """A benchmark in its public format, read by ``training.data.benchmarks.load_benchmark``."""

    name: str  # cuhk-pedes | icfg-pedes | rstpreid | ufine6926 | ...
    annotations: ConfigPath
    images: ConfigPath
    label: str | None = None  # display name in tables (default: name)

    @property
    def display(self) -> str:
        return self.label or self.name


class AugmentConfig(ConfigModel):
    """Seed 002 §4.2 training augmentation: flip, pad+random crop, random erasing (IRRA's values)."""

    flip_prob: float = Field(0.5, ge=0, le=1)
    crop_padding: int = Field(10, ge=0)
    erasing_prob: float = Field(0.5, ge=0, le=1)
    erasing_scale: tuple[float, float] = (0.02, 0.4)
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD


class DataConfig(ConfigModel):
    """``data:`` exactly one of ``corpus`` / ``benchmark`` is the training source.

    ``batch_size`` is per process and micro-step; the optimizer step sees
    ``batch_size × world_size × engine.accumulation_steps`` samples. ``sampler: pk`` draws
    ``batch_size / pk_instances`` identities with ``pk_instances`` samples each (benchmarks);
    ``random`` is a shuffled permutation (the corpus: every image is its own identity).

    ``captions_per_epoch`` (corpus sources only): ``all`` visits every accepted caption of every image in
    each epoch (one sample per caption, seed 002 §4.2's 30 epochs = 30 passes over every caption, as the
    official MLLM4Text-ReID code); ``one`` uses one caption per image per epoch, rotating over the
    captions (an epoch is then an image pass; NAM scores a caption only every ``n`` epochs). The
    default stays ``one`` (an image pass) for recipes written before the option; the pretraining
    recipe sets ``all``. Benchmark sources are always one sample per (image, caption) pair (the option
    does not apply to them; the run's ``results.json`` ``data`` block records it for corpora only)."""

    corpus: CorpusSourceConfig | None = None
    benchmark: BenchmarkSourceConfig | None = None
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(2, ge=0)
    # How DataLoader workers start. ``forkserver`` (Python 3.14's Linux default): workers come from a clean
    # server process and receive the pickled dataset (paths + offset arrays, see CorpusDataset), so they
    # inherit nothing from a busy parent — a Prefect flow process with its service threads and at-fork
    # hooks, where ``fork`` is unsafe (we saw forked workers exit 1 after the flow tests). ``fork`` starts
    # faster (no re-import per epoch); ``spawn`` for macOS/Windows.
    worker_start_method: Literal["forkserver", "fork", "spawn"] = "forkserver"
    sampler: Literal["random", "pk"] = "random"
    captions_per_epoch: Literal["all", "one"] = "one"
    pk_instances: int = Field(2, ge=1)
    val_fraction: float = Field(0.05, ge=0, lt=1)  # held-out share when the source has no val split
    val_max_images: int = Field(1000, ge=1)  # cap of the validation gallery (selection cost)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if (self.corpus is None) == (self.benchmark is None):
            raise ValueError("set exactly one of data.corpus or data.benchmark")
        if self.sampler == "pk" and self.batch_size % self.pk_instances:
            raise ValueError(f"batch_size {self.batch_size} must be a multiple of pk_instances {self.pk_instances}")
        return self


class OptimConfig(ConfigModel):
    """``optim:`` Adam (seed 002) or AdamW; no weight decay on biases, norms and other 1-d params."""

    name: Literal["adam", "adamw"] = "adam"
    lr: float = Field(1e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    grad_clip: float | None = Field(None, gt=0)  # max global grad norm; None = no clipping
    # initial LR per parameter group a method names (``optimizer_groups()``, e.g. CFAM's ``new`` modules at
    # 5e-5 vs the pretrained towers at ``lr``, seed 004 §5.1); see training.engine.optim
    group_lr: dict[str, PositiveFloat] = Field(default_factory=dict)


class ScheduleConfig(ConfigModel):
    """``schedule:`` epochs, linear warmup then cosine decay to ``min_lr_ratio × lr`` (per step)."""

    epochs: int = Field(30, ge=1)
    warmup_epochs: float = Field(1.0, ge=0)
    warmup_start_ratio: float = Field(0.1, ge=0, le=1)
    min_lr_ratio: float = Field(0.0, ge=0, le=1)
    max_steps: int | None = Field(None, ge=1)  # stop early after this many optimizer steps (smoke)


class EngineConfig(ConfigModel):
    """``engine:`` where and how to run."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"  # auto: bf16 if supported, else fp16; CPU: off
    accumulation_steps: int = Field(1, ge=1)
    seed: int = 0
    deterministic: bool = False  # torch.use_deterministic_algorithms
    output_dir: OutputPath = Path("runs")  # relative: against the current directory (docs/outputs.md)
    run_name: str | None = None  # default: the recipe file's stem
    checkpoint_every_steps: int = Field(1000, ge=1)
    keep_last_checkpoints: int = Field(2, ge=1)
    log_every_steps: int = Field(10, ge=1)
    progress: bool = True
    tensorboard: bool = True
    ddp_backend: Literal["auto", "gloo", "nccl"] = "auto"


class EvalConfig(ConfigModel):
    """``eval:`` validation-based selection (never the test split) and final test benchmarks."""

    every_epochs: int = Field(1, ge=1)
    batch_size: int = Field(128, ge=1)
    select_metric: Literal["R1", "R5", "R10", "mAP", "mINP"] = "R1"
    benchmarks: list[BenchmarkSourceConfig] = Field(default_factory=list)  # test split, on the best checkpoint
    rerank_top_k: int = Field(0, ge=0)  # > 0: the method's declared re-ranker (else a ConfigError)
    # mSD: "ranked" = seed 004 §3.4 over the ranked list; "gallery" = the public UFineBench calculator's
    # gallery-order sums (to compare with published UFineBench tables); see eval.metrics.
    msd_order: Literal["ranked", "gallery"] = "ranked"
    cmc_plot: bool = True


class RecipeConfig(ConfigModel):
    """A complete training recipe."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    method: MethodConfig
    data: DataConfig
    optim: OptimConfig = Field(default_factory=OptimConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)


def load_recipe(path: str | Path | None, overrides: Iterable[str] = ()) -> RecipeConfig:
    """Load a recipe YAML with ``--set`` overrides; :class:`~pedes_core.errors.ConfigError` names file/field.

    ``engine.run_name`` defaults to the file's stem."""
    cfg = load_config(RecipeConfig, path, overrides)
    if cfg.engine.run_name is None:
        cfg.engine.run_name = Path(path).stem if path is not None else "run"
    return cfg
