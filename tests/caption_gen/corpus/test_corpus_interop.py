"""The files open unchanged (no code of ours) in pandas, pyarrow.dataset, DuckDB and HF datasets."""

from __future__ import annotations

import pandas as pd
import pyarrow.dataset as ds


def test_pandas(built_corpus):
    df = pd.read_parquet(built_corpus / "shards")
    assert len(df) == 24 and df["image_id"].nunique() == 6
    assert bool(df["validation"].map(lambda v: v["passed"]).all())
    rej = pd.read_parquet(built_corpus / "rejects")
    assert len(rej) == 3


def test_pyarrow_dataset(built_corpus):
    d = ds.dataset(built_corpus / "shards", format="parquet")  # _done/ is ignored (underscore prefix)
    table = d.to_table()
    assert table.num_rows == 24 and "caption" in table.column_names
    assert d.to_table(filter=ds.field("kind") == "static").num_rows == 12


def test_duckdb(built_corpus):
    import duckdb

    con = duckdb.connect()
    rows = con.execute(
        f"SELECT kind, model, count(*), sum(CASE WHEN validation.passed THEN 1 ELSE 0 END) "
        f"FROM '{built_corpus}/shards/*.parquet' GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert rows == [
        ("dynamic", "llava-tiny", 6, 6),
        ("dynamic", "qwen-tiny", 6, 6),
        ("static", "llava-tiny", 6, 6),
        ("static", "qwen-tiny", 6, 6),
    ]
    (n,) = con.execute(f"SELECT count(*) FROM '{built_corpus}/rejects/*.parquet'").fetchone()
    assert n == 3


def test_huggingface_datasets(built_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets

    loaded = datasets.load_dataset(
        "parquet",
        data_files={"train": str(built_corpus / "shards" / "*.parquet")},
        cache_dir=str(tmp_path / "hf-cache"),
    )
    train = loaded["train"]
    assert train.num_rows == 24
    assert set(train.column_names) >= {"image_id", "caption", "validation", "sampling", "created_at"}
    assert train[0]["validation"]["passed"] is True
    # the dataset card's YAML `configs` make the directory itself loadable
    card_loaded = datasets.load_dataset(str(built_corpus), cache_dir=str(tmp_path / "hf-cache"))
    assert card_loaded["train"].num_rows == 24
