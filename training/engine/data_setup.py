"""Recipe ``data:`` section → training dataset, epoch order, label counts and the validation set."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from eval.evaluator import RetrievalSet
from pedes_core.errors import ConfigError
from training.config import RecipeConfig
from training.data import benchmark_dataset as bd
from training.data.corpus_dataset import CorpusDataset, CorpusFilter, CorpusIndex, build_corpus_index
from training.data.samplers import pk_order, random_order
from training.data.transforms import build_train_transform
from training.engine.distributed import DistContext, barrier, broadcast_object

log = logging.getLogger(__name__)


@dataclass
class TrainingData:
    dataset: Dataset
    order_fn: Callable[[int], np.ndarray]
    num_classes: int  # training identities (corpus: images)
    num_captions: int  # rows of per-caption state (NAM store)
    val_set: RetrievalSet | None
    info: dict[str, Any] = field(default_factory=dict)


def _pk_order_fn(person_ids: np.ndarray, instances: int, seed: int, epoch: int) -> np.ndarray:
    return pk_order(person_ids, instances, seed, epoch)


def _random_order_fn(n: int, seed: int, epoch: int) -> np.ndarray:
    return random_order(n, seed, epoch)


def build_training_data(recipe: RecipeConfig, run_dir: Path, ctx: DistContext) -> TrainingData:
    data, seed = recipe.data, recipe.engine.seed
    transform = build_train_transform(recipe.model.image_size, data.augment)
    if data.corpus is not None:
        from caption_gen.corpus.reader import Corpus

        src = data.corpus
        corpus = Corpus.open(src.root)
        image_root = src.image_root or corpus.image_root()
        if image_root is None:
            raise ConfigError(f"data.corpus.image_root: {src.root} records no image root; set it in the recipe")
        flt = CorpusFilter(
            kinds=tuple(src.kinds) if src.kinds else None,
            models=tuple(src.models) if src.models else None,
            require_validation=src.require_validation,
            descriptions=tuple(dict.fromkeys(src.descriptions)) if src.descriptions else None,
        )
        cache = src.cache_dir or (run_dir / "cache")
        index_dir = build_corpus_index(corpus, flt, cache) if ctx.is_main else None
        index_dir = broadcast_object(ctx, str(index_dir) if index_dir else None)
        barrier(ctx)
        index = CorpusIndex(index_dir, val_fraction=data.val_fraction, val_max_images=data.val_max_images)
        if len(index.train_images) == 0:
            raise ConfigError(f"data.corpus: {src.root} has no training images after the validation hold-out")
        dataset = CorpusDataset(index, image_root, transform, split="train", seed=seed,
                                captions_per_epoch=data.captions_per_epoch, identities=src.identities)
        val = None
        if len(index.val_images):
            q, qi, g, gi = index.retrieval_lists("val")
            val = RetrievalSet("corpus-val", q, qi, g, gi, image_root=str(image_root))
        if data.sampler == "pk":
            if src.identities != "person_id":
                raise ConfigError("data.sampler: 'pk' needs identities; with data.corpus.identities: image every "
                                  "image is its own identity (set data.corpus.identities: person_id, or use 'random')")
            if dataset.num_identities == len(dataset.identity):
                log.warning("data.corpus.identities: person_id, but %s records no two training images of one "
                            "person: PK batches hold no identity positives", src.root)
            order = partial(_pk_order_fn, dataset.item_person_ids(), data.pk_instances, seed)
        else:
            order = partial(_random_order_fn, len(dataset), seed)
        info = {"source": "corpus", "images": index.num_images, "captions": index.num_captions, "kinds": index.kinds(),
                "captions_per_epoch": data.captions_per_epoch, "samples_per_epoch": len(dataset)}
        if index.descriptions:
            info["images_without_description"] = index.missing_descriptions
        info["identities"] = dataset.num_identities
        return TrainingData(dataset, order, dataset.num_identities, index.num_captions, val, info)

    assert data.benchmark is not None
    benchmark = bd.load(data.benchmark)
    pairs, val_samples, num_ids = bd.training_splits(benchmark, val_fraction=data.val_fraction)
    dataset = bd.PairDataset(pairs, transform, seed=seed)
    val = None
    if val_samples:
        q, qi, g, gi = bd.retrieval_lists(val_samples)
        val = RetrievalSet(f"{data.benchmark.display}-val", q, qi, g, gi)
    if data.sampler == "pk":
        order = partial(_pk_order_fn, dataset.person_ids, data.pk_instances, seed)
    else:
        order = partial(_random_order_fn, len(dataset), seed)
    info = {"source": data.benchmark.display, "pairs": len(pairs), "identities": num_ids, "images": dataset.num_images}
    return TrainingData(dataset, order, num_ids, len(pairs), val, info)


def benchmark_test_set(source: Any, split: str = "test") -> RetrievalSet:
    """The retrieval set of a benchmark split (``eval.benchmarks`` entries, ``pedes eval``)."""
    benchmark = bd.load(source)
    samples = list(benchmark.pairs(split))
    q, qi, g, gi = bd.retrieval_lists(samples)
    return RetrievalSet(source.display, q, qi, g, gi)


def worker_context(method: str, *objects: object) -> Any:
    """The multiprocessing context for DataLoader workers (``data.worker_start_method``).

    For ``forkserver`` the server process preloads torch and the modules defining ``objects`` (dataset,
    collate), so each worker is a cheap fork of a clean, already-initialised process instead of a fresh
    interpreter importing torch (measured on 2 cores: ~12 s of worker start per epoch without preload).
    The preload list only takes effect before this process's forkserver starts; later calls are no-ops.
    """
    import multiprocessing

    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        modules = ["torch", *sorted({type(o).__module__ for o in objects if type(o).__module__ != "builtins"})]
        ctx.set_forkserver_preload(modules)
    return ctx
