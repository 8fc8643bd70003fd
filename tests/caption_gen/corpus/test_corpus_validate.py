"""`pedes corpus validate` / `info`: valid corpus passes; each kind of damage is reported, exit 1."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from caption_gen.corpus import manifest as mf
from caption_gen.corpus.schema import CAPTION_SCHEMA
from caption_gen.corpus.validate import validate_corpus
from caption_gen.corpus.writer import CorpusWriter
from flows.cli import main


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_valid_corpus(built_corpus, capsys):
    report = validate_corpus(built_corpus)
    assert report.ok, report.problems
    assert report.checked == {"shards": 3, "rejects_files": 2, "rows": 24, "images": 6}
    code, out, _ = run_cli(capsys, "corpus", "validate", str(built_corpus))
    assert code == 0 and "is valid" in out


def test_console_script_subprocess(built_corpus):
    script = Path(sys.executable).parent / "pedes"
    cmd = [str(script)] if script.exists() else [sys.executable, "-c", "from flows.cli import main; main()"]
    proc = subprocess.run(
        [*cmd, "corpus", "validate", str(built_corpus), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["valid"] is True


def test_tampered_shard_and_orphans(corpus_copy, capsys):
    shard = corpus_copy / "shards/captions-00001.parquet"
    table = pq.read_table(shard)
    pq.write_table(table.slice(0, table.num_rows - 1), shard, compression="zstd")  # one row lost
    (corpus_copy / "shards/captions-00009.parquet").write_bytes(b"left over")
    (corpus_copy / "rejects/.rejects-00004.parquet.tmp-77").write_bytes(b"x")
    (corpus_copy / "shards/_done/00000.json").unlink()
    code, out, err = run_cli(capsys, "corpus", "validate", str(corpus_copy))
    assert code == 1 and "invalid" in err and "Traceback" not in err
    assert "[hash] shards/captions-00001.parquet" in out
    assert "[rows] shards/captions-00001.parquet" in out
    assert "[orphans] shards/captions-00009.parquet" in out
    assert "[orphans] rejects/.rejects-00004.parquet.tmp-77" in out
    assert "[markers] shards/_done/00000.json" in out


def test_wrong_schema_reported(corpus_copy):
    shard = corpus_copy / "shards/captions-00000.parquet"
    table = pq.read_table(shard).drop_columns(["num_tokens"])
    table = table.set_column(table.schema.get_field_index("width"), "width", table.column("width").cast(pa.int64()))
    pq.write_table(table, shard)
    m = json.loads((corpus_copy / "corpus.json").read_text())
    m["shards"][0]["sha256"] = mf.sha256_file(shard)
    (corpus_copy / "corpus.json").write_text(json.dumps(m))
    problems = [str(p) for p in validate_corpus(corpus_copy).problems]
    assert any("[schema]" in p and "missing column 'num_tokens'" in p and "'width' is int64" in p for p in problems)
    assert any("[markers] shards/_done/00000.json" in p for p in problems)  # marker hash now differs


def test_duplicate_row_keys_across_shards(tmp_path, make_rows):
    root = tmp_path / "c"
    with CorpusWriter(root) as w:
        w.write_shard(0, make_rows(0, 2))
        w.write_shard(1, make_rows(0, 2))
    markers = mf.read_markers(root)
    mf.write_json_atomic(root / mf.MANIFEST_NAME, mf.build_manifest(markers, name="dup", image_root=None))
    report = validate_corpus(root)
    keys = [p for p in report.problems if p.check == "row_key"]
    assert len(keys) == 8 and "occurs 2 times" in keys[0].message
    assert "image check skipped" in report.notes[0]


def test_missing_images(corpus_copy, image_dir, tmp_path, capsys):
    images = tmp_path / "imgs"
    shutil.copytree(image_dir, images)
    (images / "cam1/p1.png").unlink()
    code, out, _ = run_cli(capsys, "corpus", "validate", str(corpus_copy), "--images", str(images))
    assert code == 1 and "[images] cam1/p1.png: image missing" in out and out.count("[images]") == 1
    code, out, _ = run_cli(capsys, "corpus", "validate", str(corpus_copy), "--images", str(tmp_path / "nope"))
    assert code == 1 and "does not exist" in out
    (images / "cam1/p3.png").write_bytes(b"changed")
    shutil.copy(image_dir / "cam1/p1.png", images / "cam1/p1.png")
    report = validate_corpus(corpus_copy, images=images, hash_images=True)
    assert [p.path for p in report.problems] == ["cam1/p3.png"]


def test_unfinalized_and_not_a_corpus(tmp_path, make_rows, capsys):
    with CorpusWriter(tmp_path / "c") as w:
        w.write_shard(0, make_rows(0, 1))
    code, out, _ = run_cli(capsys, "corpus", "validate", str(tmp_path / "c"))
    assert code == 1 and "[manifest] corpus.json: missing" in out
    code, _, err = run_cli(capsys, "corpus", "validate", str(tmp_path / "elsewhere"))
    assert code == 2 and "not a corpus" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "corpus", "info", str(tmp_path))
    assert code == 2 and "not a corpus" in err


def test_info_table_and_json(built_corpus, capsys):
    code, out, _ = run_cli(capsys, "corpus", "info", str(built_corpus), "--json")
    data = json.loads(out)
    assert code == 0 and data["rows"] == 24 and data["images"] == 6 and data["rejects"] == 3
    assert {(g["kind"], g["model"], g["rows"], g["passed"]) for g in data["by_kind_model"]} == {
        (k, m, 6, 6) for k in ("static", "dynamic") for m in ("qwen-tiny", "llava-tiny")
    }
    assert {r["reason"]: r["count"] for r in data["rejects_by_reason"]} == {
        "decode:empty": 1, "decode:not_an_image": 1, "discovery:duplicate": 1,
    }
    code, out, _ = run_cli(capsys, "corpus", "info", str(built_corpus))
    assert code == 0 and "fixture-corpus" in out and "llava-tiny" in out and "discovery:duplicate" in out


def test_info_counts_failed_validation(tmp_path, make_rows):
    from caption_gen.corpus.info import corpus_info

    rows = make_rows(0, 6)
    with CorpusWriter(tmp_path / "c") as w:
        w.write_shard(0, rows)
        w.finalize(name="v")
    failed = sum(not r["validation"]["passed"] for r in rows)
    info = corpus_info(tmp_path / "c")
    assert failed > 0 and info["validation"] == {"passed": len(rows) - failed, "failed": failed}
    assert pq.read_schema(tmp_path / "c/shards/captions-00000.parquet").equals(CAPTION_SCHEMA, check_metadata=False)


def test_corrupt_files_give_clear_errors(corpus_copy, capsys):
    (corpus_copy / "shards/captions-00002.parquet").write_bytes(b"PAR1 garbage")
    code, _, err = run_cli(capsys, "corpus", "info", str(corpus_copy))
    assert code == 1 and "cannot read its shards" in err and "Traceback" not in err
    (corpus_copy / "shards/_done/00001.json").write_text("{truncated")
    code, out, _ = run_cli(capsys, "corpus", "validate", str(corpus_copy))
    assert code == 1 and "[markers] shards/_done: done marker" in out and "[schema] shards/captions-00002.parquet" in out
    (corpus_copy / "corpus.json").write_text("[1, 2]")
    code, out, _ = run_cli(capsys, "corpus", "validate", str(corpus_copy))
    assert code == 1 and "[manifest] corpus.json: does not hold a JSON object" in out
