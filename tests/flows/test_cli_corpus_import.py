"""``pedes corpus import`` end to end: real processes, then the corpus read back and validated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from caption_gen.corpus.reader import Corpus

FIXTURES = Path(__file__).resolve().parents[1] / "training" / "data" / "fixtures"
REPO = Path(__file__).resolve().parents[2]


def _dataset(base: Path, fixture: str, ann_name: str, sub: str) -> tuple[Path, Path, list[dict]]:
    entries = json.loads((FIXTURES / fixture).read_text())
    base.mkdir(parents=True, exist_ok=True)
    ann = base / ann_name
    ann.write_text(json.dumps(entries))
    images = base / sub
    for i, e in enumerate(entries):
        path = images / e["file_path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        arr = np.random.default_rng(i).integers(0, 256, size=(24, 12, 3), dtype=np.uint8)
        Image.fromarray(arr).save(path)
    return ann, images, entries


def pedes(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the real CLI in a fresh interpreter (from a directory other than the repo root)."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-c", "from flows.cli import main; main()", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture(scope="module")
def cuhk(tmp_path_factory):
    return _dataset(tmp_path_factory.mktemp("cuhk"), "cuhk_pedes_reid_raw.json", "reid_raw.json", "imgs")


def test_import_then_read_back_and_validate(cuhk, tmp_path):
    ann, images, entries = cuhk
    out = tmp_path / "corpus"
    args = ["corpus", "import", "--format", "cuhk-pedes", "--annotations", str(ann), "--images", str(images),
            "--out", str(out), "--shard-size", "4", "--name", "cuhk-human"]
    run = pedes(*args, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "18 caption rows, 0 rejects, 3 shards written, 0 skipped" in run.stdout

    corpus = Corpus.open(out)
    assert corpus.manifest["name"] == "cuhk-human"
    df = corpus.to_pandas()
    assert len(df) == sum(len(e["captions"]) for e in entries) == 18
    assert set(df["kind"]) == {"human"} and set(df["model"]) == {"human:0", "human:1"}
    assert sorted(set(df["person_id"])) == sorted({e["id"] for e in entries})
    assert df.groupby("split").size().to_dict() == {"train": 10, "val": 2, "test": 6}
    assert set(df["image_path"]) == {e["file_path"] for e in entries}
    assert len(corpus.shard_paths()) == 3

    valid = pedes("corpus", "validate", str(out), "--hash-images", cwd=tmp_path)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    info = pedes("corpus", "info", str(out), "--json", cwd=tmp_path)
    assert info.returncode == 0 and json.loads(info.stdout)["rows"] == 18

    again = pedes(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 shards written, 3 skipped" in again.stdout
    assert len(Corpus.open(out).to_pandas()) == 18


def test_malformed_annotations_exit_2_without_traceback(cuhk, tmp_path):
    ann, images, entries = cuhk
    bad = tmp_path / "reid_raw.json"
    broken = [dict(e) for e in entries]
    broken[4]["split"] = "dev"
    del broken[7]["id"]
    bad.write_text(json.dumps(broken))
    out = tmp_path / "corpus"
    run = pedes("corpus", "import", "--format", "cuhk-pedes", "--annotations", str(bad), "--images", str(images),
                "--out", str(out), cwd=tmp_path)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert str(bad) in run.stderr and "entry 4: unknown split 'dev'" in run.stderr and "entry 7: missing key 'id'" in run.stderr
    assert not out.exists()  # nothing written before the input is known to be good


def test_unknown_format_and_split_are_config_errors(cuhk, tmp_path, capsys):
    from flows.cli import main

    ann, images, _ = cuhk
    base = ["corpus", "import", "--annotations", str(ann), "--images", str(images), "--out", str(tmp_path / "c")]
    for extra, text in ((["--format", "market"], "unknown benchmark 'market'"),
                        (["--format", "cuhk-pedes", "--split", "dev"], "--split 'dev'")):
        with pytest.raises(SystemExit) as exit_:
            main([*base, *extra])
        assert exit_.value.code == 2
        assert text in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_ufine_alias_imports_ufine3c(tmp_path, capsys):
    from flows.cli import main

    ann, images, entries = _dataset(tmp_path / "u3c", "ufine3c.json", "ufine3c.json", ".")
    with pytest.raises(SystemExit) as exit_:
        main(["corpus", "import", "--format", "ufine", "--annotations", str(ann), "--images", str(images),
              "--out", str(tmp_path / "c"), "--workers", "2"])
    assert exit_.value.code == 0, capsys.readouterr().err
    corpus = Corpus.open(tmp_path / "c")
    df = corpus.to_pandas()
    assert len(df) == 12 and set(df["split"]) == {"test"}
    assert set(df["model"]) == {f"human:{k}" for k in range(4)}
    assert corpus.manifest["sources"][0]["name"] == "UFine3C"


def test_synth_import_with_descriptions_adds_identity_and_clothing_rows(tmp_path):
    synth = tmp_path / "synth"
    made = pedes("synth", "--out", str(synth), "--identities", "3", "--images-per-identity", "2", "--seed", "4",
                 cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    out = tmp_path / "corpus"
    run = pedes("corpus", "import", "--format", "cuhk-pedes", "--annotations", str(synth / "reid_raw.json"),
                "--images", str(synth / "imgs"), "--out", str(out),
                "--descriptions", str(synth / "attributes.jsonl"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    df = Corpus.open(out).to_pandas()
    per_kind = df.groupby("kind")["image_id"].nunique().to_dict()
    assert per_kind == {"human": 6, "identity": 6, "clothing": 6}, per_kind
    attrs = [json.loads(line) for line in (synth / "attributes.jsonl").read_text().splitlines()]
    assert set(df[df["kind"] == "identity"]["caption"]) == {a["identity_text"] for a in attrs}
    assert pedes("corpus", "validate", str(out), cwd=tmp_path).returncode == 0

    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    res = pedes("corpus", "import", "--format", "cuhk-pedes", "--annotations", str(synth / "reid_raw.json"),
                "--images", str(synth / "imgs"), "--out", str(tmp_path / "c2"), "--descriptions", str(bad),
                cwd=tmp_path)
    assert res.returncode == 2 and "bad.jsonl" in res.stdout + res.stderr and "Traceback" not in res.stderr


def test_exact_duplicate_entries_are_imported_once_with_a_warning(cuhk, tmp_path):
    ann, images, entries = cuhk
    doubled = tmp_path / "reid_raw.json"
    doubled.write_text(json.dumps(entries + [dict(entries[0]), dict(entries[3])]))  # two entries written twice
    out = tmp_path / "corpus"
    run = pedes("corpus", "import", "--format", "cuhk-pedes", "--annotations", str(doubled), "--images", str(images),
                "--out", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "2 exact duplicate annotation entries skipped" in run.stderr
    assert "18 caption rows, 0 rejects" in run.stdout  # not 22: no extra captions for the repeated entries
    df = Corpus.open(out).to_pandas()
    assert set(df["model"]) == {"human:0", "human:1"}
    assert pedes("corpus", "validate", str(out), cwd=tmp_path).returncode == 0


def test_person_id_out_of_int64_range_names_file_and_entry(cuhk, tmp_path):
    ann, images, entries = cuhk
    bad = [dict(e) for e in entries]
    bad[2]["id"] = 2**64
    path = tmp_path / "reid_raw.json"
    path.write_text(json.dumps(bad))
    run = pedes("corpus", "import", "--format", "cuhk-pedes", "--annotations", str(path), "--images", str(images),
                "--out", str(tmp_path / "corpus"), cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in run.stderr
    assert str(path) in lines[0] and "entry 2" in lines[0] and str(2**64) in lines[0] and "out of range" in lines[0]
    assert not (tmp_path / "corpus" / "shards").exists()
