"""CorpusWriter: shards, markers, idempotence, schema errors, uniqueness, manifest and card."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from caption_gen.corpus import manifest as mf
from caption_gen.corpus.errors import CorpusError, ShardSchemaError
from caption_gen.corpus.rows import caption_row, reject_row
from caption_gen.corpus.schema import CAPTION_SCHEMA, SCHEMA_VERSION
from caption_gen.corpus.writer import CorpusWriter


def test_fixture_corpus_layout_and_manifest(built_corpus):
    files = sorted(p.relative_to(built_corpus).as_posix() for p in built_corpus.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "corpus.json",
        "rejects/rejects-00000.parquet",  # cam0/empty.png
        "rejects/rejects-00001.parquet",  # cam1/copy_of_p0.png, cam1/notes.png
        "shards/_done/00000.json",
        "shards/_done/00001.json",
        "shards/_done/00002.json",
        "shards/captions-00000.parquet",
        "shards/captions-00001.parquet",
        "shards/captions-00002.parquet",
    ]  # no lock file and no temp file left behind
    m = json.loads((built_corpus / "corpus.json").read_text())
    assert m["name"] == "fixture-corpus" and m["schema_version"] == SCHEMA_VERSION
    assert m["config"] == {"backend": "none"} and m["banks"] == {"instructions": "0" * 64}
    assert m["models"] == ["llava-tiny", "qwen-tiny"]
    assert m["code_version"]["caption_gen"] == "0.1.0"
    for entry in m["shards"] + m["rejects"]:
        assert mf.sha256_file(built_corpus / entry["path"]) == entry["sha256"]
        assert pq.ParquetFile(built_corpus / entry["path"]).metadata.num_rows == entry["rows"]
    assert pq.ParquetFile(built_corpus / m["shards"][0]["path"]).metadata.row_group(0).column(0).compression == "ZSTD"
    t = m["totals"]
    assert (t["rows"], t["images"], t["rejects"]) == (24, 6, 3)
    assert t["by_kind"] == {"dynamic": 12, "static": 12}
    assert t["rejects_by_reason"] == {"decode:empty": 1, "decode:not_an_image": 1, "discovery:duplicate": 1}
    assert t["validation"] == {"passed": 24, "failed": 0}
    marker = json.loads((built_corpus / "shards/_done/00001.json").read_text())
    assert marker["rejects_file"] == "rejects/rejects-00001.parquet" and marker["extra"]["images_in"] >= 1


def test_dataset_card(built_corpus):
    card = (built_corpus / "README.md").read_text()
    assert card.startswith("---\n") and "path: shards/*.parquet" in card
    assert "license: cc0-1.0" in card and "# fixture-corpus" in card
    assert "24 caption rows for 6 images" in card and "decode:empty" in card


def test_write_is_idempotent_and_marker_written_last(tmp_path, make_rows):
    with CorpusWriter(tmp_path / "c") as w:
        first = w.write_shard(0, make_rows(0, 5))
        mtime = (tmp_path / "c/shards/captions-00000.parquet").stat().st_mtime_ns
        again = w.write_shard(0, make_rows(0, 99))  # already done: nothing rewritten
        assert again == first and first["rows"] == 20
        assert (tmp_path / "c/shards/captions-00000.parquet").stat().st_mtime_ns == mtime
        assert w.is_done(0) and not w.is_done(1) and w.done_shards() == {0}
        assert first["validation"]["passed"] + first["validation"]["failed"] == 20
        assert first["by_model"] == {"llava-tiny": 10, "qwen-tiny": 10}


def test_table_input_and_missing_nullable_columns(tmp_path, make_rows):
    table = pa.Table.from_pylist(make_rows(1, 3), schema=CAPTION_SCHEMA).drop_columns(["style_id", "num_tokens"])
    with CorpusWriter(tmp_path / "c") as w:
        stats = w.write_shard(1, table)
    back = pq.read_table(tmp_path / "c/shards/captions-00001.parquet")
    assert back.schema.equals(CAPTION_SCHEMA, check_metadata=False) and stats["rows"] == 12
    assert back.column("style_id").null_count == 12


@pytest.mark.parametrize(
    ("change", "column"),
    [
        ({"width": "wide"}, "width"),
        ({"caption": None}, "caption"),
        ({"validation": {"passed": None, "reasons": [], "covered": [], "coverage": None}}, "validation.passed"),
        ({"created_at": "yesterday"}, "created_at"),
    ],
)
def test_schema_errors_name_the_column(tmp_path, make_rows, change, column):
    rows = make_rows(0, 2)
    rows[1] = {**rows[1], **change}
    with CorpusWriter(tmp_path / "c") as w, pytest.raises(ShardSchemaError, match=column.replace(".", r"\.")):
        w.write_shard(0, rows)
    assert not (tmp_path / "c/shards/captions-00000.parquet").exists()
    assert not list((tmp_path / "c/shards/_done").iterdir())


def test_unknown_column_and_duplicate_key_rejected(tmp_path, make_rows):
    rows = make_rows(0, 2)
    with CorpusWriter(tmp_path / "c") as w:
        with pytest.raises(ShardSchemaError, match="unknown column.*colour"):
            w.write_shard(0, [*rows[:1], {**rows[1], "colour": "red"}])
        with pytest.raises(ShardSchemaError, match="more than once.*s000i0000"):
            w.write_shard(0, [*rows, rows[0]])
        with pytest.raises(ShardSchemaError, match="required column.*image_id"):
            w.write_shard(0, pa.table({"caption": ["x"]}))


def test_cross_shard_duplicate_fails_finalize(tmp_path, make_rows):
    with CorpusWriter(tmp_path / "c") as w:
        w.write_shard(0, make_rows(0, 3))
        w.write_shard(1, make_rows(0, 3))  # same rows again under another shard number
        with pytest.raises(CorpusError, match="more than one shard"):
            w.finalize(name="dup")
    assert not (tmp_path / "c/corpus.json").exists()


def test_shard_with_only_rejects(tmp_path):
    rej = reject_row(image_path="x.jpg", stage="decode", reason="decode:empty", detail="zero bytes")
    with CorpusWriter(tmp_path / "c") as w:
        stats = w.write_shard(3, [], [rej])
        m = w.finalize(name="only-rejects")
    assert stats["captions_file"] is None and stats["rejects_by_reason"] == {"decode:empty": 1}
    assert m["shards"] == [] and m["rejects"][0]["rows"] == 1 and m["totals"]["rows"] == 0


def test_temp_and_orphan_files_cleaned(tmp_path, make_rows):
    root = tmp_path / "c"
    with CorpusWriter(root) as w:
        w.write_shard(0, make_rows(0, 2))
    # a killed writer left: a temp file, a renamed shard without its marker, a temp marker
    (root / "shards/.captions-00001.parquet.tmp-999").write_bytes(b"partial")
    pq.write_table(pa.Table.from_pylist(make_rows(1, 2), schema=CAPTION_SCHEMA), root / "shards/captions-00001.parquet")
    (root / "shards/_done/.00001.json.tmp-999").write_text("{")
    with CorpusWriter(root) as w:
        assert not (root / "shards/.captions-00001.parquet.tmp-999").exists()  # removed on open
        assert w.done_shards() == {0}
        m = w.finalize(name="clean")
    assert not (root / "shards/captions-00001.parquet").exists()  # orphan removed on finalize
    assert [s["shard"] for s in m["shards"]] == [0]


def test_finalize_twice_keeps_created_at(tmp_path, make_rows):
    with CorpusWriter(tmp_path / "c", image_root="imgs") as w:
        w.write_shard(0, make_rows(0, 1))
        first = w.finalize(name="x")
        w.write_shard(1, make_rows(1, 1))
        second = w.finalize(name="x")
    assert second["created_at"] == first["created_at"] and second["totals"]["rows"] == 8
    assert second["image_root"] == "imgs"


def test_rows_helpers():
    row = caption_row(
        image_id="i", image_path="p", image_sha256="s", width=1, height=2, kind="static", model="m", caption="c",
        validation={"passed": False},
    )
    assert row["attempt"] == 1 and row["person_id"] is None
    assert row["validation"] == {"passed": False, "reasons": [], "covered": [], "coverage": None}
    assert row["created_at"].tzinfo is not None and row["created_at"] <= dt.datetime.now(dt.UTC)
    with pytest.raises(ValueError, match="'caption'"):
        caption_row(image_id="i", image_path="p", image_sha256="s", width=1, height=2, kind="static", model="m")
    with pytest.raises(ValueError, match="unknown field.*colour"):
        reject_row(image_path="p", stage="decode", reason="r", colour="red")
    assert reject_row(image_path="p", stage="decode", reason="r")["reasons"] is None
