"""BDAM's triplet loss (seed 000 Eq. 4) needs identity positives: configs/bdam.yaml draws PK batches over the
corpus' person ids (``data.corpus.identities: person_id``) instead of one identity per image."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from caption_gen.corpus.reader import Corpus
from caption_gen.corpus.rows import caption_row
from caption_gen.corpus.writer import CorpusWriter
from pedes_core.errors import ConfigError
from training.config import AugmentConfig, load_recipe
from training.data.corpus_dataset import CorpusDataset, CorpusFilter, CorpusIndex, build_corpus_index
from training.data.samplers import pk_order
from training.data.transforms import build_train_transform
from training.engine.data_setup import build_training_data
from training.engine.distributed import DistContext

RECIPE = Path(__file__).parents[3] / "configs" / "bdam.yaml"
PEOPLE = {0: 3, 7: 3, 9: 2, 11: 3}  # corpus person id -> images; plus one image without a person id


@pytest.fixture(scope="module")
def person_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pk-corpus")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(3)
    stamp = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    rows = []
    owners = [pid for pid, n in PEOPLE.items() for _ in range(n)] + [None]
    for i, pid in enumerate(owners):
        rel = f"{i:03d}.png"
        Image.fromarray(rng.integers(0, 255, (32, 16, 3), dtype=np.uint8)).save(images / rel)
        sha = hashlib.sha256((images / rel).read_bytes()).hexdigest()
        base = dict(image_id=sha[:20], image_path=rel, image_sha256=sha, width=16, height=32, created_at=stamp,
                    person_id=pid)
        for kind in ("static", "dynamic"):
            rows.append(caption_row(**base, kind=kind, model="m1", caption=f"person {pid} image {i} {kind}"))
        rows.append(caption_row(**base, kind="identity", model="m1", caption=f"identity of {pid}"))
        rows.append(caption_row(**base, kind="clothing", model="m1", caption=f"clothing {i}"))
    writer = CorpusWriter(root / "corpus", image_root=str(images))
    writer.write_shard(0, rows)
    writer.finalize(name="pk")
    return root / "corpus"


def _dataset(root: Path, tmp_path: Path, identities: str, per_epoch: str = "one") -> CorpusDataset:
    corpus = Corpus.open(root)
    index = CorpusIndex(build_corpus_index(corpus, CorpusFilter(kinds=("static", "dynamic")), tmp_path))
    transform = build_train_transform((32, 16), AugmentConfig(crop_padding=2))
    return CorpusDataset(index, corpus.image_root(), transform, captions_per_epoch=per_epoch, identities=identities)


def test_person_id_identities_group_the_images_of_a_person(person_corpus: Path, tmp_path: Path) -> None:
    ds = _dataset(person_corpus, tmp_path, "person_id")
    assert ds.num_identities == len(PEOPLE) + 1  # the image without a person id is its own identity
    ids = [ds[i]["person_id"] for i in range(len(ds))]
    captions = [ds[i]["caption"] for i in range(len(ds))]
    by_person: dict[str, set[int]] = {}
    for pid, cap in zip(ids, captions, strict=True):
        by_person.setdefault(cap.split()[1], set()).add(pid)
    assert all(len(v) == 1 for v in by_person.values()) and len(by_person) == len(PEOPLE) + 1
    assert np.array_equal(ds.item_person_ids(), np.asarray(ids))
    per_image = _dataset(person_corpus, tmp_path, "image")
    assert per_image.num_identities == len(per_image)  # default: one identity per image (seed 002 §3.3)
    every = _dataset(person_corpus, tmp_path, "person_id", "all")
    assert np.array_equal(every.item_person_ids(), [every[k]["person_id"] for k in range(len(every))])


def test_pk_batches_over_person_ids_hold_identity_positives(person_corpus: Path, tmp_path: Path) -> None:
    ds = _dataset(person_corpus, tmp_path, "person_id")
    order = pk_order(ds.item_person_ids(), 2, seed=0, epoch=0)
    pids = torch.tensor(ds.item_person_ids()[order]).view(-1, 2)
    assert (pids[:, 0] == pids[:, 1]).all()


def test_bdam_recipe_uses_a_pk_sampler_over_person_ids(person_corpus: Path, tmp_path: Path) -> None:
    recipe = load_recipe(RECIPE, [f"data.corpus.root={person_corpus}", f"data.corpus.cache_dir={tmp_path}",
                                  "data.batch_size=4", "data.val_fraction=0"])
    assert recipe.data.sampler == "pk" and recipe.data.pk_instances >= 2
    assert recipe.data.corpus.identities == "person_id"
    params = recipe.method.params
    assert params["gate_reg_weight"] == 0 and params["fusion_text"] == "identity"
    assert params["aln_feature"] == "pooled" and params["gradnorm_alpha_mode"] == "exponent"
    ctx = DistContext(0, 1, 0, torch.device("cpu"))
    data = build_training_data(recipe, tmp_path, ctx)
    assert data.num_classes == len(PEOPLE) + 1
    order = data.order_fn(0)
    pids = data.dataset.item_person_ids()[order][: len(order) // 4 * 4].reshape(-1, 4)
    assert (pids == pids[:, :1]).all()  # K = 4 samples of one person per group
    image_ids = load_recipe(RECIPE, [f"data.corpus.root={person_corpus}", f"data.corpus.cache_dir={tmp_path}",
                                     "data.corpus.identities=image"])
    with pytest.raises(ConfigError, match="identities"):
        build_training_data(image_ids, tmp_path, ctx)
