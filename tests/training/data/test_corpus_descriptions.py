"""Corpus descriptions (issue 7, seed 000 §3): per image an identity and a clothing description from the
corpus kinds ``identity``/``clothing`` in the sample (``identity_caption``/``clothing_caption``), rotated by
epoch, built into the memory-mapped index; queries still from ``kinds``; images without one get ``""``.
Also: ``import_benchmark(descriptions=attributes.jsonl)`` writes those rows from a ``pedes synth`` dataset."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from caption_gen.corpus.reader import Corpus
from caption_gen.corpus.rows import caption_row
from caption_gen.corpus.writer import CorpusWriter
from pedes_core.errors import InputError
from training.config import AugmentConfig
from training.data.collate import TokenizingCollate
from training.data.corpus_dataset import CorpusDataset, CorpusFilter, CorpusIndex, build_corpus_index
from training.data.import_corpus import import_corpus
from training.data.transforms import build_train_transform
from training.tokenization import ClipTokenizer

N_IMAGES = 12
NO_CLOTHING = {3, 7}  # images without any accepted clothing description
DESC = ("identity", "clothing")


@pytest.fixture(scope="module")
def desc_corpus(tmp_path_factory) -> Path:
    """12 images in 2 shards: static + dynamic queries; two identity and two clothing descriptions each
    (one clothing description fails validation), except images in NO_CLOTHING; plus a description of an
    image that has no accepted query caption."""
    root = tmp_path_factory.mktemp("desc-corpus")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(7)
    writer = CorpusWriter(root / "corpus", image_root=str(images))
    stamp = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    for shard in range(2):
        rows = []
        for i in range(shard * 6, shard * 6 + 6):
            rel = f"{i:03d}.png"
            Image.fromarray(rng.integers(0, 255, (32, 16, 3), dtype=np.uint8)).save(images / rel)
            sha = hashlib.sha256((images / rel).read_bytes()).hexdigest()
            base = dict(image_id=sha[:20], image_path=rel, image_sha256=sha, width=16, height=32, created_at=stamp)
            for kind in ("static", "dynamic"):
                rows.append(caption_row(**base, kind=kind, model="m1", caption=f"img{i} {kind} query"))
            for k in range(2):
                rows.append(caption_row(**base, kind="identity", model=f"d{k}", caption=f"img{i} identity {k}"))
            if i not in NO_CLOTHING:
                rows.append(caption_row(**base, kind="clothing", model="d0", caption=f"img{i} clothing 0"))
                rows.append(caption_row(**base, kind="clothing", model="d1", caption=f"img{i} clothing 1"))
                rows.append(caption_row(**base, kind="clothing", model="d2", caption=f"img{i} clothing bad",
                                        validation={"passed": False, "reasons": ["coverage"]}))
        if shard == 1:  # an image with a description but no query caption: not indexed
            base = dict(image_id="f" * 20, image_path="ghost.png", image_sha256="f" * 64, width=16, height=32,
                        created_at=stamp)
            rows.append(caption_row(**base, kind="identity", model="d0", caption="ghost identity"))
        writer.write_shard(shard, rows)
    writer.finalize(name="descriptions")
    return root / "corpus"


def _dataset(root: Path, tmp_path: Path, flt: CorpusFilter) -> tuple[CorpusIndex, CorpusDataset]:
    corpus = Corpus.open(root)
    index = CorpusIndex(build_corpus_index(corpus, flt, tmp_path))
    transform = build_train_transform((32, 16), AugmentConfig(crop_padding=2))
    return index, CorpusDataset(index, corpus.image_root(), transform, seed=1)


FLT = CorpusFilter(kinds=("static", "dynamic"), descriptions=DESC)


def test_descriptions_belong_to_the_image_and_rotate_by_epoch(desc_corpus, tmp_path):
    index, ds = _dataset(desc_corpus, tmp_path, FLT)
    assert len(ds) == N_IMAGES and index.descriptions == DESC
    assert index.num_captions == 2 * N_IMAGES  # descriptions are not queries
    seen: dict[int, dict[str, set[str]]] = {}
    for epoch in range(2):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            img = item["caption"].split()[0]
            assert item["caption"].split()[1] in ("static", "dynamic")
            assert item["identity_caption"].startswith(img + " identity ")
            got = seen.setdefault(int(img[3:]), {"identity": set(), "clothing": set()})
            got["identity"].add(item["identity_caption"])
            if int(img[3:]) in NO_CLOTHING:
                assert item["clothing_caption"] == ""  # documented choice: empty string, image kept
            else:
                assert item["clothing_caption"].startswith(img + " clothing ")
                got["clothing"].add(item["clothing_caption"])
    assert len(seen) == N_IMAGES
    for i, got in seen.items():
        assert got["identity"] == {f"img{i} identity 0", f"img{i} identity 1"}  # both used over 2 epochs
        if i not in NO_CLOTHING:
            assert got["clothing"] == {f"img{i} clothing 0", f"img{i} clothing 1"}  # failed one never


def test_missing_counts_recorded_and_ghost_description_not_indexed(desc_corpus, tmp_path):
    index, ds = _dataset(desc_corpus, tmp_path, FLT)
    assert index.missing_descriptions == {"identity": 0, "clothing": len(NO_CLOTHING)}
    all_desc = [ds.description(i, k) for i in range(len(ds)) for k in DESC]
    assert "ghost identity" not in all_desc


def test_without_option_samples_have_no_description_keys(desc_corpus, tmp_path):
    index, ds = _dataset(desc_corpus, tmp_path, CorpusFilter(kinds=("static", "dynamic")))
    assert index.descriptions == () and index.missing_descriptions == {}
    item = ds[0]
    assert "identity_caption" not in item and "clothing_caption" not in item


def test_collate_lists_descriptions_and_pickled_dataset_reopens_maps(desc_corpus, tmp_path):
    _, ds = _dataset(desc_corpus, tmp_path, FLT)
    ds.set_epoch(1)
    clone = pickle.loads(pickle.dumps(ds))  # what a DataLoader worker receives: maps reopened lazily
    assert clone._descriptions is None
    collate = TokenizingCollate(ClipTokenizer())
    batch = collate([clone[i] for i in range(4)])
    assert batch["identity_caption"] == [ds[i]["identity_caption"] for i in range(4)]
    assert batch["clothing_caption"] == [ds[i]["clothing_caption"] for i in range(4)]


def test_bdam_missing_descriptions_policy_on_empty_string(desc_corpus, tmp_path):
    """An image without a clothing description makes its batch lack descriptions for BDAM."""
    from training.engine.smoke import smoke_model_config
    from training.methods.bdam import BDAMMethod

    _, ds = _dataset(desc_corpus, tmp_path, FLT)
    batch = {"clothing_caption": [ds[i]["clothing_caption"] for i in range(len(ds))]}
    tok = ClipTokenizer()
    kw = dict(model=smoke_model_config((32, 32)), num_classes=1, num_captions=1, tokenizer=tok, depth=1,
              heads=2, fusion_dim=16)
    with pytest.raises(InputError, match="clothing_caption"):
        BDAMMethod(**kw)._descriptions(batch, "clothing_caption")
    assert BDAMMethod(**kw, missing_descriptions="skip")._descriptions(batch, "clothing_caption") is None
    assert batch["clothing_caption"].count("") == len(NO_CLOTHING)
    full = {"clothing_caption": [c for c in batch["clothing_caption"] if c]}
    assert BDAMMethod(**kw)._descriptions(full, "clothing_caption") == full["clothing_caption"]


@pytest.fixture(scope="module")
def synth_dataset(tmp_path_factory) -> Path:
    from caption_gen.synth import render_dataset

    out = tmp_path_factory.mktemp("synth-desc")
    render_dataset(out, identities=4, images_per_identity=2, seed=3, size=(64, 32))
    return out


def test_import_writes_identity_and_clothing_rows_from_synth_attributes(synth_dataset, tmp_path):
    out = tmp_path / "corpus"
    import_corpus("cuhk-pedes", synth_dataset / "reid_raw.json", synth_dataset / "imgs", out,
                  descriptions=synth_dataset / "attributes.jsonl")
    df = pd.read_parquet(out / "shards")
    attrs = {a["file_path"]: a for a in map(json.loads, (synth_dataset / "attributes.jsonl").read_text().splitlines())}
    entries = json.loads((synth_dataset / "reid_raw.json").read_text())
    human = df[df.kind == "human"]
    assert len(human) == sum(len(e["captions"]) for e in entries)  # human captions unchanged
    for kind, field in (("identity", "identity_text"), ("clothing", "clothing_text")):
        rows = df[df.kind == kind]
        assert len(rows) == len(entries) and set(rows.model) == {"attributes"}
        assert all(r.caption == attrs[r.image_path][field] for r in rows.itertuples())
    assert not df.duplicated(["image_id", "kind", "model", "template_id", "style_id"]).any()
    # the corpus trains with descriptions: the human captions are the queries
    index, ds = _dataset(out, tmp_path / "cache", CorpusFilter(kinds=("human",), descriptions=DESC))
    assert index.missing_descriptions == {"identity": 0, "clothing": 0}
    item = ds[0]
    path = Corpus.open(out).captions(columns=["image_id", "image_path"]).to_pandas().drop_duplicates()
    rel = sorted(path.itertuples(), key=lambda r: r.image_id)[int(ds.positions[0])].image_path
    assert item["identity_caption"] == attrs[rel]["identity_text"]
    assert item["clothing_caption"] == attrs[rel]["clothing_text"]
    # resuming the same import (descriptions included in the fingerprint) skips every shard
    again = import_corpus("cuhk-pedes", synth_dataset / "reid_raw.json", synth_dataset / "imgs", out,
                          descriptions=synth_dataset / "attributes.jsonl")
    assert again.shards_written == 0 and again.rows == len(df)


def test_import_rejects_malformed_descriptions_before_writing(synth_dataset, tmp_path):
    bad = tmp_path / "attributes.jsonl"
    lines = (synth_dataset / "attributes.jsonl").read_text().splitlines()
    broken = json.loads(lines[1])
    del broken["clothing_text"]
    bad.write_text("\n".join([lines[0], json.dumps(broken)]) + "\n")
    out = tmp_path / "corpus"
    with pytest.raises(InputError, match=r"attributes.jsonl:2: 'clothing_text'"):
        import_corpus("cuhk-pedes", synth_dataset / "reid_raw.json", synth_dataset / "imgs", out, descriptions=bad)
    assert not (out / "shards").exists() or not any((out / "shards").glob("*.parquet"))
