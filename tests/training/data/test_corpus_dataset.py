"""Corpus dataset: accepted captions per image from real Parquet shards, per-epoch caption rotation
over all kinds, filters, validation hold-out, memory-mapped index shared by DataLoader workers."""

from __future__ import annotations

import datetime as dt
import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from caption_gen.corpus.reader import Corpus
from caption_gen.corpus.rows import caption_row
from caption_gen.corpus.writer import CorpusWriter
from pedes_core.errors import InputError
from training.config import AugmentConfig
from training.data.collate import TokenizingCollate
from training.data.corpus_dataset import CorpusDataset, CorpusFilter, CorpusIndex, build_corpus_index
from training.data.transforms import build_train_transform
from training.tokenization import ClipTokenizer

KINDS = ("static", "dynamic", "identity", "clothing")
N_IMAGES = 24


@pytest.fixture(scope="module")
def kinds_corpus(tmp_path_factory) -> Path:
    """24 images in 3 shards; each has the four seed-002 kinds from model m1 plus a failed m2 caption."""
    root = tmp_path_factory.mktemp("kinds-corpus")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(1)
    writer = CorpusWriter(root / "corpus", image_root=str(images))
    stamp = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    for shard in range(3):
        rows = []
        for i in range(shard * 8, shard * 8 + 8):
            rel = f"sub/{i:03d}.png"
            (images / "sub").mkdir(exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (48, 16, 3), dtype=np.uint8)).save(images / rel)
            sha = hashlib.sha256((images / rel).read_bytes()).hexdigest()
            base = dict(image_id=sha[:20], image_path=rel, image_sha256=sha, width=16, height=48, created_at=stamp)
            for kind in KINDS:
                rows.append(caption_row(**base, kind=kind, model="m1", caption=f"img{i} {kind} caption"))
            rows.append(caption_row(**base, kind="static", model="m2", caption=f"img{i} rejected",
                                    validation={"passed": False, "reasons": ["refusal"]}))
        writer.write_shard(shard, rows)
    writer.finalize(name="kinds")
    return root / "corpus"


def _dataset(corpus_root: Path, tmp_path: Path, flt: CorpusFilter = CorpusFilter(), **kw) -> CorpusDataset:
    corpus = Corpus.open(corpus_root)
    index = CorpusIndex(build_corpus_index(corpus, flt, tmp_path), **kw)
    transform = build_train_transform((48, 16), AugmentConfig(crop_padding=2))
    return CorpusDataset(index, corpus.image_root(), transform, seed=3)


def test_every_kind_used_once_per_image_over_n_epochs(kinds_corpus, tmp_path):
    ds = _dataset(kinds_corpus, tmp_path)
    assert len(ds) == N_IMAGES
    seen: dict[int, list[str]] = {}
    for epoch in range(len(KINDS)):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            assert item["person_id"] == i  # each image its own identity
            seen.setdefault(item["image_index"], []).append(item["caption"])
    for captions in seen.values():
        img = captions[0].split()[0]
        assert sorted(c.split()[1] for c in captions) == sorted(KINDS)  # all four kinds, each once
        assert all(c.startswith(img + " ") for c in captions)  # the captions belong to the image
        assert not any("rejected" in c for c in captions)  # validation.passed only


def test_caption_rotation_differs_between_images_and_epochs(kinds_corpus, tmp_path):
    ds = _dataset(kinds_corpus, tmp_path)
    first = [ds.caption_row(i, 0) for i in range(len(ds))]
    second = [ds.caption_row(i, 1) for i in range(len(ds))]
    kinds_e0 = {ds[i]["caption"].split()[1] for i in range(len(ds))}
    assert len(kinds_e0) > 1  # image-dependent offset: one epoch already mixes kinds
    assert all(a != b for a, b in zip(first, second, strict=True))


def test_filters_by_kind_model_and_validation(kinds_corpus, tmp_path):
    only_static = _dataset(kinds_corpus, tmp_path / "a", CorpusFilter(kinds=("static",)))
    assert {only_static[i]["caption"].split()[1] for i in range(len(only_static))} == {"static"}
    with_failed = CorpusIndex(build_corpus_index(Corpus.open(kinds_corpus), CorpusFilter(require_validation=False), tmp_path / "b"))
    assert with_failed.num_captions == N_IMAGES * 5
    m2 = CorpusIndex(build_corpus_index(Corpus.open(kinds_corpus), CorpusFilter(models=("m2",), require_validation=False), tmp_path / "c"))
    assert m2.num_captions == N_IMAGES
    with pytest.raises(InputError, match="no caption passes"):
        build_corpus_index(Corpus.open(kinds_corpus), CorpusFilter(models=("m2",)), tmp_path / "d")


def test_validation_holdout_is_deterministic_and_disjoint(kinds_corpus, tmp_path):
    idx1 = CorpusIndex(build_corpus_index(Corpus.open(kinds_corpus), CorpusFilter(), tmp_path), val_fraction=0.25)
    idx2 = CorpusIndex(build_corpus_index(Corpus.open(kinds_corpus), CorpusFilter(), tmp_path), val_fraction=0.25)
    assert 0 < len(idx1.val_images) < N_IMAGES
    assert np.array_equal(idx1.val_images, idx2.val_images)
    assert not set(idx1.val_images) & set(idx1.train_images)
    q_text, q_ids, g_paths, g_ids = idx1.retrieval_lists("val")
    assert len(g_paths) == len(idx1.val_images) and len(q_text) == 4 * len(g_paths)
    assert set(q_ids) == set(g_ids)
    capped = CorpusIndex(idx1.index_dir, val_fraction=0.9, val_max_images=3)
    assert len(capped.val_images) == 3


def test_workers_share_a_memory_mapped_index(kinds_corpus, tmp_path):
    ds = _dataset(kinds_corpus, tmp_path)
    ds[0]  # opens the memory maps in this process
    state = pickle.dumps(ds)
    # what a worker receives: paths and the per-image offset arrays, never the caption table
    assert len(state) < 20_000  # the caption text of the corpus alone is larger
    assert b"img0 static caption" not in state
    collate = TokenizingCollate(ClipTokenizer())
    batches = [list(range(0, 8)), list(range(8, 16)), list(range(16, 24))]
    serial = list(DataLoader(ds, batch_sampler=batches, collate_fn=collate, num_workers=0))
    # forkserver, the trainer's default (data.worker_start_method): workers really receive the pickled state
    parallel = list(DataLoader(ds, batch_sampler=batches, collate_fn=collate, num_workers=2,
                               multiprocessing_context="forkserver"))
    for a, b in zip(serial, parallel, strict=True):
        assert a.keys() == {"images", "text_tokens", "person_ids", "caption_ids", "image_index"}
        assert a["images"].shape == (8, 3, 48, 16) and a["text_tokens"].shape == (8, 77)
        for key in a:
            assert torch.equal(a[key], b[key])  # augmentation seeded per sample, not per worker


def test_missing_image_is_a_clear_error(kinds_corpus, tmp_path):
    ds = _dataset(kinds_corpus, tmp_path)
    ds.image_root = tmp_path / "nowhere"
    with pytest.raises(InputError, match="cannot read corpus image"):
        ds[0]
