"""Benchmark loaders on fixture files in each public format: records, splits, pairs, id remapping."""

from __future__ import annotations

import pytest

from pedes_core.errors import ConfigError
from training.data.benchmarks import SPLITS, Benchmark, load_benchmark

ALL = ("cuhk-pedes", "icfg-pedes", "rstpreid", "ufine6926", "ufine3c")


def _load(ds, name: str | None = None, **kw) -> Benchmark:
    return load_benchmark(name or ds.name, ds.annotations, ds.images, **kw)


@pytest.mark.parametrize("name", ALL)
def test_records_match_the_annotation_file(pedes_datasets, name):
    ds = pedes_datasets[name]
    b = _load(ds)
    assert b.name == name
    records = b.all_records
    assert len(records) == len(ds.entries)
    for entry, rec in zip(ds.entries, records, strict=True):
        assert rec.rel_path == entry[ds.path_key]
        assert rec.image_path == ds.images / entry[ds.path_key]
        assert rec.image_path.is_file()
        assert rec.person_id == entry["id"]
        assert rec.split == entry["split"]
        assert rec.captions == [c.strip() for c in entry["captions"]]
    for split in SPLITS:
        assert [r.index for r in b.records(split)] == [i for i, e in enumerate(ds.entries) if e["split"] == split]


@pytest.mark.parametrize("name", ALL)
def test_pairs_one_per_caption_with_train_ids_remapped(pedes_datasets, name):
    ds = pedes_datasets[name]
    b = _load(ds)
    for split in SPLITS:
        entries = [e for e in ds.entries if e["split"] == split]
        pairs = b.pairs(split)
        expected = [(e[ds.path_key], k, c.strip(), e["id"]) for e in entries for k, c in enumerate(e["captions"])]
        assert [(p.rel_path, p.caption_index, p.caption, p.original_person_id) for p in pairs] == expected
        assert all(p.split == split for p in pairs)
        if split == "train":
            originals = sorted({e["id"] for e in entries})
            assert b.num_train_ids == len(originals)
            assert {p.person_id for p in pairs} == set(range(len(originals)))
            # the remap is the rank of the original id (monotone), one label per original id
            assert all(p.person_id == originals.index(p.original_person_id) for p in pairs)
        else:
            assert all(p.person_id == p.original_person_id for p in pairs)


def test_cuhk_pedes_splits_and_labels(pedes_datasets):
    b = _load(pedes_datasets["cuhk-pedes"])
    assert b.splits == ("train", "val", "test")
    assert b.train_id_map == {11: 0, 25: 1, 40: 2}
    assert b.num_train_ids == 3
    assert len(b.pairs("train")) == 10 and len(b.pairs("val")) == 2 and len(b.pairs("test")) == 6
    assert {p.person_id for p in b.pairs("test")} == {60, 77}
    summary = b.summary()
    assert summary["splits"]["train"] == {"images": 5, "captions": 10, "identities": 3}
    assert summary["val"] == "from the annotation file"


def test_rstpreid_uses_img_path_and_keeps_id_zero(pedes_datasets):
    b = _load(pedes_datasets["rstpreid"])
    assert b.train_id_map == {0: 0, 4: 1}
    assert b.records("val")[0].rel_path == "3701_c3_0052.jpg"
    assert [len(r.captions) for r in b.all_records] == [2] * 8


def test_icfg_has_no_val_split_by_default(pedes_datasets):
    b = _load(pedes_datasets["icfg-pedes"])
    assert b.splits == ("train", "test")
    assert b.records("val") == [] and b.pairs("val") == []
    assert "no val split" in b.val_note
    assert b.num_train_ids == 4


def test_val_fraction_holds_out_whole_train_identities_deterministically(pedes_datasets):
    ds = pedes_datasets["icfg-pedes"]
    b = _load(ds, val_fraction=0.5)
    again = _load(ds, val_fraction=0.5)
    val_ids = {r.person_id for r in b.records("val")}
    train_ids = {r.person_id for r in b.records("train")}
    assert len(val_ids) == 2 and len(train_ids) == 2
    assert val_ids.isdisjoint(train_ids) and val_ids | train_ids == {3, 8, 15, 21}
    assert [r.rel_path for r in again.records("val")] == [r.rel_path for r in b.records("val")]
    # every image of a held-out identity moved (2 images per identity in the fixture)
    assert len(b.records("val")) == 4
    assert b.num_train_ids == 2
    assert {p.person_id for p in b.pairs("train")} == {0, 1}
    assert b.records("test") == _load(ds).records("test")
    assert "held out" in b.val_note


def test_val_fraction_bounds(pedes_datasets):
    with pytest.raises(ValueError, match="already|has one"):
        _load(pedes_datasets["cuhk-pedes"], val_fraction=0.2)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        _load(pedes_datasets["icfg-pedes"], val_fraction=1.0)
    # a tiny fraction still holds out one identity, a large one keeps one for training
    assert len({r.person_id for r in _load(pedes_datasets["icfg-pedes"], val_fraction=0.01).records("val")}) == 1
    assert _load(pedes_datasets["icfg-pedes"], val_fraction=0.99).num_train_ids == 1


def test_ufine3c_is_test_only_and_keeps_sources(pedes_datasets):
    b = _load(pedes_datasets["ufine3c"])
    assert b.splits == ("test",)
    assert b.records("train") == [] and b.pairs("train") == [] and b.num_train_ids == 0
    assert [r.source for r in b.records("test")] == ["CUHK-PEDES", "CUHK-PEDES", "ICFG-PEDES", "UFine6926"]
    assert len(b.pairs("test")) == 12


def test_ufine6926_train_test(pedes_datasets):
    b = _load(pedes_datasets["ufine6926"])
    assert b.splits == ("train", "test")
    assert b.train_id_map == {1: 0, 2: 1}
    assert all(r.source is None for r in b.all_records)
    assert min(len(p.caption.split()) for p in b.pairs("train")) > 20


@pytest.mark.parametrize(("file", "expected"), [("ufine3c", "ufine3c"), ("ufine6926", "ufine6926")])
def test_ufine_alias_detects_the_layout(pedes_datasets, file, expected):
    assert _load(pedes_datasets[file], "ufine").name == expected


def test_names_are_normalized_and_unknown_names_listed(pedes_datasets):
    ds = pedes_datasets["cuhk-pedes"]
    assert _load(ds, "CUHK_PEDES").name == "cuhk-pedes"
    with pytest.raises(ConfigError) as err:
        _load(ds, "market1501")
    assert "market1501" in str(err.value) and "icfg-pedes" in str(err.value) and "ufine" in str(err.value)


def test_unknown_split_argument(pedes_datasets):
    b = _load(pedes_datasets["cuhk-pedes"])
    with pytest.raises(ValueError, match="dev"):
        b.records("dev")
    with pytest.raises(ValueError, match="dev"):
        b.pairs("dev")


def test_benchmark_feeds_training_splits(pedes_datasets):
    """The trainer's consumer (training.data.benchmark_dataset) gets train pairs and a held-out val."""
    from training.data.benchmark_dataset import retrieval_lists, training_splits

    b = _load(pedes_datasets["icfg-pedes"])
    pairs, val, n_ids = training_splits(b, val_fraction=0.25)
    assert n_ids == 3 and len(pairs) == 6 and len(val) == 2
    texts, q_ids, gallery, g_ids = retrieval_lists(b.pairs("test"))
    assert len(texts) == 3 and len(gallery) == 3 and sorted(set(g_ids.tolist())) == [101, 102]
