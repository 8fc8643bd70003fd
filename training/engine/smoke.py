"""``pedes train --config RECIPE --smoke``: run any recipe end to end in well under 2 minutes on a CPU.

What is kept from the recipe: the method (name and params), the optimizer choice, the data
*source type* (corpus or benchmark), the sampler and the engine's device/AMP settings. What is
replaced: the model becomes ``arch: tiny`` at a small resolution (:func:`smoke_model_config`), the data
becomes synthetic pedestrians rendered on the fly by ``caption_gen.synth`` (a CUHK-PEDES-format
benchmark; for a corpus recipe its training split is imported as a corpus of ``human`` captions, as
``pedes corpus import`` does, and used as the query kind; when the recipe asks for ``descriptions``
(BDAM), the renderer's per-image identity/clothing texts (``attributes.jsonl``) are imported as rows of
kind ``identity``/``clothing`` and supplied the same way), training stops after a few steps, a ``method.pretrained`` checkpoint and
local encoder weights named in the method params (:data:`WEIGHT_PARAMS`, e.g. BDAM's ViT/BERT directories)
are not loaded, size knobs that a method keeps in its params instead of ``model:``
(``TrainingMethod.smoke_params``, declared by each method — BDAM's branch depth,
fusion width, hard negatives, re-ranking depth) are shrunk like the model, ``eval.rerank_top_k`` is capped, (smoke checks the recipe, not the weights), and the synthetic test split is evaluated.
The run directory (with ``results.json``) goes to ``<engine.output_dir>/smoke/``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from training.config import BenchmarkSourceConfig, CorpusSourceConfig, RecipeConfig
from training.models.config import ModelConfig

SMOKE_IMAGE_SIZE = (96, 32)
SMOKE_SQUARE_SIZE = (64, 64)  # for recipes with square images (BDAM's ViT-B/16 at 224×224)
SMOKE_IDENTITIES = 40
SMOKE_IMAGES_PER_IDENTITY = 4
SMOKE_STEPS = 6
SMOKE_BATCH = 16
SMOKE_CORPUS_SPLIT = "train"
#: method params naming local pretrained weights; dropped so the method builds its tiny random encoders
WEIGHT_PARAMS = ("image_encoder", "text_encoder")
SMOKE_RERANK_TOP_K = 4
SMOKE_QUERY_KINDS = ["human"]  # import_corpus.HUMAN_KIND: the imported captions are the smoke queries


def smoke_model_config(image_size: tuple[int, int] = SMOKE_IMAGE_SIZE) -> ModelConfig:
    """The tiny open_clip dual encoder used by smoke runs and the CPU benchmarks."""
    return ModelConfig(arch="tiny", image_size=image_size, nam_layer=1)


def render_synthetic_benchmark(out: Path, identities: int, images_per_identity: int, seed: int) -> Path:
    """Synthetic pedestrians in CUHK-PEDES format (``out/reid_raw.json`` + ``out/imgs/``)."""
    from caption_gen.synth import render_dataset

    render_dataset(out, identities=identities, images_per_identity=images_per_identity, seed=seed)
    return out


def import_as_corpus(annotations: Path, images: Path, out: Path, descriptions: Path | None = None) -> Path:
    """The training split of a CUHK-PEDES-format benchmark as a corpus (``pedes corpus import``), with
    identity/clothing description rows from ``descriptions`` (a synth ``attributes.jsonl``) when given."""
    from training.data.benchmarks import load_benchmark
    from training.data.import_corpus import import_benchmark

    benchmark = load_benchmark("cuhk-pedes", annotations, images)
    import_benchmark(benchmark, out, name="smoke-synthetic", splits=[SMOKE_CORPUS_SPLIT], descriptions=descriptions)
    return out


def smoke_recipe(recipe: RecipeConfig, work: Path) -> RecipeConfig:
    """The smoke variant of ``recipe`` with its synthetic data under ``work`` (module docstring)."""
    synth = render_synthetic_benchmark(work / "synth", SMOKE_IDENTITIES, SMOKE_IMAGES_PER_IDENTITY, recipe.engine.seed)
    annotations, images = synth / "reid_raw.json", synth / "imgs"
    bench = BenchmarkSourceConfig(name="cuhk-pedes", annotations=annotations, images=images, label="synthetic")
    data: dict[str, Any] = recipe.data.model_dump()
    data.update(num_workers=0, val_fraction=0.1, val_max_images=200)
    pk = recipe.data.pk_instances
    data["batch_size"] = max(SMOKE_BATCH // pk, 1) * pk if recipe.data.sampler == "pk" else SMOKE_BATCH
    if recipe.data.corpus is not None:
        wanted = recipe.data.corpus.descriptions
        corpus_root = import_as_corpus(annotations, images, work / "corpus",
                                       synth / "attributes.jsonl" if wanted else None)
        data["corpus"] = CorpusSourceConfig(root=corpus_root, image_root=images, cache_dir=work / "cache",
                                            kinds=SMOKE_QUERY_KINDS, descriptions=wanted,
                                            identities=recipe.data.corpus.identities).model_dump()
        data["benchmark"] = None
    else:
        data["benchmark"] = bench.model_dump()
    eng = recipe.engine
    cfg = recipe.model_dump()
    cfg.update(
        model=smoke_model_config(SMOKE_SQUARE_SIZE if _square(recipe) else SMOKE_IMAGE_SIZE).model_dump(),
        method={**recipe.method.model_dump(), "pretrained": None, "params": smoke_method_params(recipe)},
        data=data,
        schedule={**recipe.schedule.model_dump(), "epochs": 2, "max_steps": SMOKE_STEPS, "warmup_epochs": 0.5},
        engine={
            **eng.model_dump(),
            "output_dir": Path(eng.output_dir) / "smoke",
            "run_name": f"{eng.run_name}-smoke",
            "checkpoint_every_steps": 3,
            "log_every_steps": 1,
        },
        eval={**recipe.eval.model_dump(), "benchmarks": [bench.model_dump()], "batch_size": 64,
              "rerank_top_k": min(recipe.eval.rerank_top_k, SMOKE_RERANK_TOP_K)},
    )
    return RecipeConfig.model_validate(cfg)


def smoke_method_params(recipe: RecipeConfig) -> dict[str, Any]:
    """The recipe's method params without local weight paths and with the small sizes the method declares
    for smoke runs (``TrainingMethod.smoke_params``, e.g. BDAM's branch depth and fusion width)."""
    import training.methods  # noqa: F401  (registers the built-in methods)
    from training.registry import METHODS

    params = {k: v for k, v in recipe.method.params.items() if k not in WEIGHT_PARAMS}
    params.update(getattr(METHODS.get(recipe.method.name), "smoke_params", {}))
    return params


def _square(recipe: RecipeConfig) -> bool:
    h, w = recipe.model.image_size
    return h == w


def run_smoke(recipe: RecipeConfig) -> Any:
    """Train the smoke variant of ``recipe`` and evaluate it; returns the :class:`TrainResult`."""
    from training.engine.trainer import train

    with tempfile.TemporaryDirectory(prefix="pedes-smoke-") as tmp:
        return train(smoke_recipe(recipe, Path(tmp)))
