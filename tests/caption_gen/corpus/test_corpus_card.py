"""The dataset card as the Hub reads it (docs/corpus-card.md): metadata parsed back with huggingface_hub,
license fields, size category, configs for captions and rejects, splits from the ``split`` column, no local
absolute paths, and ``datasets.load_dataset`` on the corpus directory."""

from __future__ import annotations

import pytest
from huggingface_hub import DatasetCard

from caption_gen.corpus.card import license_fields, size_category
from caption_gen.corpus.rows import caption_row, reject_row
from caption_gen.corpus.writer import CorpusWriter


def _rows(split_of, n=4, start=0):
    return [caption_row(image_id=f"{i:020x}", image_path=f"imgs/{i}.jpg", image_sha256=f"{i:064x}", width=8, height=16,
                        person_id=i, split=split_of(i), kind="human", model="human:0", caption=f"a person {i}.")
            for i in range(start, start + n)]


def _corpus(root, shards, *, sources, image_root):
    with CorpusWriter(root, image_root=str(image_root)) as w:
        for k, rows in enumerate(shards):
            rejects = [reject_row(image_path="bad.jpg", stage="decode", reason="decode:empty")] if k == 0 else []
            w.write_shard(k, rows, rejects)
        w.finalize(name="card-test", sources=sources)
    return DatasetCard.load(root / "README.md")


def test_pure_shards_give_hub_splits_and_other_license_fields(tmp_path):
    root = tmp_path / "corpus"
    sources = [{"name": "CUHK-PEDES", "license": "the dataset authors' terms of use (research only)",
                "annotations": str(tmp_path / "data" / "reid_raw.json"), "images": str(tmp_path / "data" / "imgs")}]
    card = _corpus(root, [_rows(lambda i: "train"), _rows(lambda i: "test", start=4)], sources=sources,
                   image_root=tmp_path / "data" / "imgs")
    meta = card.data.to_dict()
    assert meta["license"] == "other"
    assert meta["license_name"] == "the-dataset-authors-terms-of-use-research-only"
    assert meta["license_link"] == "README.md#sources-and-licenses"
    assert "## Sources and licenses" in card.text
    assert meta["task_categories"] == ["text-to-image", "image-to-text"]
    assert meta["size_categories"] == ["n<1K"]
    configs = {c["config_name"]: c["data_files"] for c in meta["configs"]}
    assert configs["default"] == [{"split": "train", "path": ["shards/captions-00000.parquet"]},
                                  {"split": "test", "path": ["shards/captions-00001.parquet"]}]
    assert configs["rejects"] == [{"split": "train", "path": "rejects/*.parquet"}]
    text = (root / "README.md").read_text()
    assert str(tmp_path) not in text  # no local absolute paths
    assert "reid_raw.json" in text  # the file is still named

    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(str(root), cache_dir=str(tmp_path / "hf"))
    assert {k: v.num_rows for k, v in ds.items()} == {"train": 4, "test": 4}
    assert set(ds["test"]["split"]) == {"test"}
    rej = datasets.load_dataset(str(root), "rejects", cache_dir=str(tmp_path / "hf"))
    assert rej["train"].num_rows == 1


def test_mixed_shards_keep_one_split_and_state_the_split_counts(tmp_path):
    root = tmp_path / "corpus"
    card = _corpus(root, [_rows(lambda i: "train" if i < 3 else "test")], sources=[{"name": "x", "license": "MIT"}],
                   image_root=tmp_path)
    meta = card.data.to_dict()
    assert meta["license"] == "mit" and "license_name" not in meta
    assert meta["configs"][0]["data_files"] == [{"split": "train", "path": "shards/*.parquet"}]
    assert "| test | 1 |" in card.text and "| train | 3 |" in card.text and "split" in card.text


def test_license_and_size_rules():
    assert license_fields([]) == {"license": "unknown"}
    assert license_fields([{"license": "CC-BY-4.0"}]) == {"license": "cc-by-4.0"}
    other = license_fields([{"license": "LUPerson terms", "license_link": "https://example.org/terms"}])
    assert other == {"license": "other", "license_name": "luperson-terms", "license_link": "https://example.org/terms"}
    assert license_fields([{"license": "mit"}, {"license": "apache-2.0"}])["license"] == "other"
    assert [size_category(n) for n in (0, 999, 1000, 2_500_000)] == ["n<1K", "n<1K", "1K<n<10K", "1M<n<10M"]
