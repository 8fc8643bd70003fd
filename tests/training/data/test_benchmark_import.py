"""Benchmark → corpus import: rows, rejects, duplicate images, resume, fingerprint checks."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from caption_gen.corpus.errors import CorpusError
from caption_gen.corpus.reader import Corpus
from caption_gen.corpus.validate import validate_corpus
from training.data.benchmarks import load_benchmark
from training.data.import_corpus import CONFLICT_REASON, import_benchmark, import_corpus

ALL = ("cuhk-pedes", "icfg-pedes", "rstpreid", "ufine6926", "ufine3c")


def _keys(corpus: Corpus) -> list[tuple]:
    t = corpus.captions(columns=["image_id", "kind", "model", "image_path", "person_id", "split", "caption"])
    return sorted(zip(*(t.column(c).to_pylist() for c in t.column_names), strict=True))


@pytest.mark.parametrize("name", ALL)
def test_import_writes_one_human_row_per_caption(pedes_datasets, tmp_path, name):
    ds = pedes_datasets[name]
    result = import_corpus(name, ds.annotations, ds.images, tmp_path / "corpus", shard_size=3)
    corpus = Corpus.open(tmp_path / "corpus")
    df = corpus.to_pandas()
    n_captions = sum(len(e["captions"]) for e in ds.entries)
    assert result.rows == len(df) == n_captions and result.rejects == 0
    assert result.shards_written == -(-len(ds.entries) // 3) and result.shards_skipped == 0
    assert set(df["kind"]) == {"human"}
    assert df["instruction_id"].isna().all() and df["template_id"].isna().all() and df["style_id"].isna().all()
    assert df["validation"].map(lambda v: v["passed"]).all()
    for entry in ds.entries:
        rel = entry[ds.path_key]
        rows = df[df["image_path"] == rel].sort_values("model")
        assert list(rows["model"]) == [f"human:{k}" for k in range(len(entry["captions"]))]
        assert list(rows["caption"]) == [c.strip() for c in entry["captions"]]
        assert set(rows["person_id"]) == {entry["id"]} and set(rows["split"]) == {entry["split"]}
        sha = hashlib.sha256((ds.images / rel).read_bytes()).hexdigest()
        assert set(rows["image_sha256"]) == {sha} and set(rows["image_id"]) == {sha[:20]}
        assert set(zip(rows["width"], rows["height"], strict=True)) == {ds.sizes[rel]}
    assert corpus.image_root() == str(ds.images)
    manifest = corpus.manifest
    assert manifest["name"] == name
    assert manifest["sources"][0]["annotations"] == str(ds.annotations)
    assert manifest["sources"][0]["license"]
    assert manifest["config"]["import"]["format"] == name
    report = validate_corpus(tmp_path / "corpus", hash_images=True)
    assert report.ok, report.problems


def test_undecodable_images_become_reject_rows(make_pedes_dataset, tmp_path):
    ds = make_pedes_dataset("cuhk-pedes")
    (ds.images / ds.entries[2]["file_path"]).write_bytes(b"")  # zero bytes
    jpg = ds.images / ds.entries[6]["file_path"]
    jpg.write_bytes(jpg.read_bytes()[:40])  # truncated
    (ds.images / ds.entries[7]["file_path"]).write_text("not an image")
    result = import_corpus("cuhk-pedes", ds.annotations, ds.images, tmp_path / "c", shard_size=4)
    corpus = Corpus.open(tmp_path / "c")
    rejects = corpus.rejects().to_pandas()
    assert result.rejects == len(rejects) == 6  # 3 images x 2 captions, none lost
    assert set(rejects["stage"]) == {"import"}
    by_path = {p: g for p, g in rejects.groupby("image_path")}
    assert set(by_path) == {ds.entries[i]["file_path"] for i in (2, 6, 7)}
    assert set(by_path[ds.entries[2]["file_path"]]["reason"]) == {"decode:empty"}
    assert set(by_path[ds.entries[7]["file_path"]]["reason"]) == {"decode:not_an_image"}
    assert next(iter(by_path[ds.entries[6]["file_path"]]["reason"])).startswith("decode:")
    assert sorted(by_path[ds.entries[2]["file_path"]]["caption"]) == sorted(ds.entries[2]["captions"])
    assert set(rejects["model"]) == {"human:0", "human:1"}
    assert result.rows == 18 - 6
    assert ds.entries[2]["file_path"] not in set(corpus.to_pandas()["image_path"])
    assert validate_corpus(tmp_path / "c").ok


def _with_duplicates(make_pedes_dataset):
    ds = make_pedes_dataset("cuhk-pedes")
    first = ds.images / ds.entries[0]["file_path"]  # person 11
    shutil.copyfile(first, ds.images / ds.entries[1]["file_path"])  # same person 11, another path
    shutil.copyfile(first, ds.images / ds.entries[2]["file_path"])  # person 25: a conflict
    return ds


def test_duplicate_image_content_continues_caption_numbering_or_is_rejected(make_pedes_dataset, tmp_path):
    ds = _with_duplicates(make_pedes_dataset)
    result = import_corpus("cuhk-pedes", ds.annotations, ds.images, tmp_path / "c", shard_size=1)
    corpus = Corpus.open(tmp_path / "c")
    df = corpus.to_pandas()
    image_id = hashlib.sha256((ds.images / ds.entries[0]["file_path"]).read_bytes()).hexdigest()[:20]
    same = df[df["image_id"] == image_id].sort_values("model")
    assert list(same["model"]) == ["human:0", "human:1", "human:2", "human:3"]
    assert list(same["image_path"]) == [ds.entries[0]["file_path"]] * 2 + [ds.entries[1]["file_path"]] * 2
    rejects = corpus.rejects().to_pandas()
    assert set(rejects["reason"]) == {CONFLICT_REASON} and len(rejects) == 2
    assert set(rejects["image_path"]) == {ds.entries[2]["file_path"]}
    assert ds.entries[0]["file_path"] in rejects["detail"].iloc[0]
    assert result.rows == 18 - 2
    assert validate_corpus(tmp_path / "c").ok


def test_interrupted_import_resumes_without_duplicates(make_pedes_dataset, tmp_path):
    ds = _with_duplicates(make_pedes_dataset)
    reference = tmp_path / "reference"
    import_corpus("cuhk-pedes", ds.annotations, ds.images, reference, shard_size=1)

    class Killed(Exception):
        pass

    def kill_after_first(shard, stats, skipped):
        if shard == 0:
            raise Killed  # injected fault: the run dies right after writing shard 0

    # shard 1 holds entry 1 (same content and person as entry 0: captions continue as human:2/3),
    # shard 2 entry 2 (same content, other person: rejected); the resumed run must read shard 0 back

    out = tmp_path / "resumed"
    with pytest.raises(Killed):
        import_corpus("cuhk-pedes", ds.annotations, ds.images, out, shard_size=1, on_shard=kill_after_first)
    assert not (out / "corpus.json").exists()
    marker0 = (out / "shards/_done/00000.json").read_text()
    seen = []
    result = import_corpus(
        "cuhk-pedes", ds.annotations, ds.images, out, shard_size=1, on_shard=lambda s, st, sk: seen.append((s, sk))
    )
    assert seen == [(0, True)] + [(s, False) for s in range(1, 9)]
    assert (result.shards_skipped, result.shards_written) == (1, 8)
    assert (out / "shards/_done/00000.json").read_text() == marker0  # done shards untouched
    assert _keys(Corpus.open(out)) == _keys(Corpus.open(reference))
    assert len(set(k[:3] for k in _keys(Corpus.open(out)))) == result.rows == 16
    # a finished import run again writes nothing and changes nothing
    again = import_corpus("cuhk-pedes", ds.annotations, ds.images, out, shard_size=1)
    assert (again.shards_skipped, again.shards_written, again.rows) == (9, 0, 16)
    assert validate_corpus(out, hash_images=True).ok


def test_resume_refuses_a_different_import(make_pedes_dataset, pedes_datasets, tmp_path):
    ds = make_pedes_dataset("cuhk-pedes")
    out = tmp_path / "c"
    import_corpus("cuhk-pedes", ds.annotations, ds.images, out, shard_size=4)
    with pytest.raises(CorpusError, match="different import"):
        import_corpus("cuhk-pedes", ds.annotations, ds.images, out, shard_size=3)
    entries = json.loads(ds.annotations.read_text())
    entries[0]["captions"][0] = "A changed caption."
    ds.annotations.write_text(json.dumps(entries))
    with pytest.raises(CorpusError, match="different import"):
        import_corpus("cuhk-pedes", ds.annotations, ds.images, out, shard_size=4)
    icfg = pedes_datasets["icfg-pedes"]
    with pytest.raises(CorpusError, match="different import"):
        import_corpus("icfg-pedes", icfg.annotations, icfg.images, out, shard_size=4)


def test_split_selection_and_name(pedes_datasets, tmp_path):
    ds = pedes_datasets["cuhk-pedes"]
    b = load_benchmark("cuhk-pedes", ds.annotations, ds.images)
    result = import_benchmark(b, tmp_path / "c", splits=["test", "val"], name="cuhk-eval", workers=2)
    df = Corpus.open(tmp_path / "c").to_pandas()
    assert set(df["split"]) == {"test", "val"} and result.rows == 8
    assert set(df["person_id"]) == {50, 60, 77}
    assert result.manifest["name"] == "cuhk-eval"
    with pytest.raises(ValueError, match="dev"):
        import_benchmark(b, tmp_path / "d", splits=["dev"])
    with pytest.raises(CorpusError, match="no entries"):
        import_benchmark(load_benchmark("ufine3c", *_paths(pedes_datasets["ufine3c"])), tmp_path / "e", splits=["train"])


def _paths(ds):
    return ds.annotations, ds.images
