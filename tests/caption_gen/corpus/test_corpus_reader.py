"""Reader: pyarrow / pandas over done shards, filters, grouping per image, rejects, errors."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

from caption_gen.corpus.errors import NotACorpusError
from caption_gen.corpus.reader import Corpus
from caption_gen.corpus.schema import CAPTION_SCHEMA, REJECT_SCHEMA
from caption_gen.corpus.writer import CorpusWriter


def test_open_and_read(built_corpus, image_dir):
    c = Corpus.open(built_corpus)
    assert c.finalized and c.manifest["name"] == "fixture-corpus" and c.image_root() == str(image_dir)
    assert len(c.shard_paths()) == 3 and c.num_rows() == 24
    table = c.captions()
    assert table.schema.equals(CAPTION_SCHEMA, check_metadata=False) and table.num_rows == 24
    assert c.dataset().count_rows() == 24
    sub = c.captions(columns=["image_id", "caption"], filter=pc.field("kind") == "dynamic")
    assert sub.column_names == ["image_id", "caption"] and sub.num_rows == 12
    df = c.to_pandas(columns=["model"])
    assert sorted(df["model"].unique()) == ["llava-tiny", "qwen-tiny"]
    rej = c.rejects()
    assert rej.schema.equals(REJECT_SCHEMA, check_metadata=False)
    assert sorted(rej.column("reason").to_pylist()) == ["decode:empty", "decode:not_an_image", "discovery:duplicate"]
    dup = rej.filter(pc.field("reason") == "discovery:duplicate").to_pylist()[0]
    assert dup["image_path"] == "cam1/copy_of_p0.png" and "cam0/p0.png" in dup["detail"]


def test_captions_by_image(built_corpus):
    groups = Corpus.open(built_corpus).captions_by_image(columns=["kind", "model", "caption"])
    assert len(groups) == 6 and list(groups) == sorted(groups)
    for image_id, t in groups.items():
        assert t.num_rows == 4 and set(t.column("image_id").to_pylist()) == {image_id}
        assert t.column("kind").to_pylist() == ["dynamic", "dynamic", "static", "static"]
    only = Corpus.open(built_corpus).captions_by_image(filter=pc.field("model") == "qwen-tiny")
    assert all(t.num_rows == 2 for t in only.values())


def test_unfinalized_corpus_reads_done_shards_only(tmp_path, make_rows):
    root = tmp_path / "c"
    with CorpusWriter(root) as w:
        w.write_shard(0, make_rows(0, 2))
        w.write_shard(1, make_rows(1, 2))
    (root / "shards/_done/00001.json").unlink()  # shard 1 "in flight": not visible
    c = Corpus.open(root)
    assert not c.finalized and c.num_rows() == 8 and c.captions().num_rows == 8
    assert c.manifest["totals"]["rows"] == 8


def test_empty_corpus(tmp_path):
    CorpusWriter(tmp_path / "c").close()
    c = Corpus.open(tmp_path / "c")
    assert c.captions().num_rows == 0 and c.rejects().num_rows == 0 and c.captions_by_image() == {}


def test_not_a_corpus(tmp_path):
    with pytest.raises(NotACorpusError, match="not a corpus") as info:
        Corpus.open(tmp_path)
    assert info.value.exit_code == 2
    (tmp_path / "corpus.json").write_text("{not json")
    with pytest.raises(NotACorpusError, match="not valid JSON"):
        Corpus.open(tmp_path)
    with pytest.raises(NotACorpusError, match="no such directory"):
        Corpus.open(tmp_path / "nope")
