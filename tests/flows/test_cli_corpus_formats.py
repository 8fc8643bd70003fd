"""LUPerson-MLLM and CUHK-PEDES formats both ways through the real CLI (docs/formats.md): round trips,
key resolution, rejects, and ``pedes corpus sample``."""

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

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "training" / "data" / "fixtures"


def pedes(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, size=(24, 12, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)


@pytest.fixture()
def lup(tmp_path):
    """Images under part1/ and part2/, four caption files keyed the way the release keys them."""
    images = tmp_path / "LUPerson-MLLM"
    names = [f"part{1 + i % 2}/{i:04d}.jpg" for i in range(6)]
    for i, n in enumerate(names):
        _image(images / n, i)
    caps = tmp_path / "captions"
    caps.mkdir()
    files = {}
    for prefix in ("Ts", "Td"):
        for model in ("qwen", "shikra"):
            # absolute foreign paths (as released), relative paths and bare basenames must all resolve
            keyed = {}
            for i, n in enumerate(names):
                key = f"/data0/x/LUPerson-MLLM/{n}" if i % 3 == 0 else n if i % 3 == 1 else n.split("/")[-1]
                keyed[key] = f"A {prefix} {model} caption {i}: a man in a red coat and black shoes."
            files[f"{prefix}-{model}.json"] = keyed
            (caps / f"{prefix}-{model}.json").write_text(json.dumps(keyed))
    return images, caps, names, files


def test_luperson_import_export_round_trip(lup, tmp_path):
    images, caps, names, files = lup
    out = tmp_path / "corpus"
    run = pedes("corpus", "import", "--format", "luperson-mllm", "--annotations", str(caps), "--images", str(images),
                "--out", str(out), "--shard-size", "4", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "24 caption rows, 0 rejects, 2 shards written" in run.stdout
    df = Corpus.open(out).to_pandas()
    assert sorted(df.groupby(["kind", "model"]).size().to_dict().items()) == [
        (("dynamic", "qwen"), 6), (("dynamic", "shikra"), 6), (("static", "qwen"), 6), (("static", "shikra"), 6)]
    assert set(df["image_path"]) == set(names)
    one = df[(df.kind == "dynamic") & (df.model == "shikra") & (df.image_path == names[3])]
    assert one["caption"].tolist() == [files["Td-shikra.json"][f"/data0/x/LUPerson-MLLM/{names[3]}"]]
    assert pedes("corpus", "validate", str(out), "--hash-images", cwd=tmp_path).returncode == 0

    exported = tmp_path / "exported"
    run = pedes("corpus", "export", str(out), "--format", "luperson-mllm", "--out", str(exported), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in exported.iterdir()) == sorted(files)
    for name, original in files.items():
        back = json.loads((exported / name).read_text())
        # keys come back relative to the image root; by basename (how MLLM4Text-ReID reads them) they match
        assert set(back) == set(names)
        assert {k.split("/")[-1]: v for k, v in back.items()} == {k.split("/")[-1]: v for k, v in original.items()}

    # and the exported files import to the same corpus content
    again = tmp_path / "again"
    run = pedes("corpus", "import", "--format", "luperson-mllm", "--annotations", str(exported), "--images",
                str(images), "--out", str(again), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    cols = ["image_id", "image_path", "kind", "model", "caption"]
    a = df[cols].sort_values(cols).reset_index(drop=True)
    b = Corpus.open(again).to_pandas()[cols].sort_values(cols).reset_index(drop=True)
    assert a.equals(b)


def test_luperson_unresolvable_keys_become_rejects_and_bad_files_exit_2(lup, tmp_path):
    images, caps, names, files = lup
    single = tmp_path / "Ts-qwen.json"
    single.write_text(json.dumps({names[0]: "a woman in a dress.", "nowhere/missing.jpg": "a man."}))
    out = tmp_path / "c1"
    run = pedes("corpus", "import", "--format", "luperson-mllm", "--annotations", str(single), "--images", str(images),
                "--out", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rejects = Corpus.open(out).rejects().to_pylist()
    assert [(r["reason"], r["image_path"], r["caption"]) for r in rejects] == [
        ("import:image_not_found", "nowhere/missing.jpg", "a man.")]
    sample = pedes("corpus", "sample", str(out), "--rejects", "-n", "3", cwd=tmp_path)
    assert sample.returncode == 0 and "import:image_not_found" in sample.stdout and "a man." in sample.stdout

    bad = tmp_path / "bad" / "Td-qwen.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps([names[0]]))
    run = pedes("corpus", "import", "--format", "luperson-mllm", "--annotations", str(bad), "--images", str(images),
                "--out", str(tmp_path / "c2"), cwd=tmp_path)
    assert run.returncode == 2 and "expected a JSON object" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "c2").exists()


@pytest.mark.parametrize("contiguous", [True, False])
def test_cuhk_pedes_import_export_round_trip(tmp_path, contiguous):
    entries = json.loads((FIXTURES / "cuhk_pedes_reid_raw.json").read_text())
    for e in entries:
        e.pop("processed_tokens", None)
    train_ids = sorted({e["id"] for e in entries if e["split"] == "train"})
    assert train_ids != list(range(1, len(train_ids) + 1))  # the fixture's ids have gaps
    if contiguous:  # as in the real reid_raw.json: training ids 1..N
        new = {pid: n for n, pid in enumerate(train_ids, 1)}
        for e in entries:
            e["id"] = new[e["id"]] if e["split"] == "train" else e["id"]
    ann = tmp_path / "reid_raw.json"
    ann.write_text(json.dumps(entries))
    for i, e in enumerate(entries):
        _image(tmp_path / "imgs" / e["file_path"], i)
    out = tmp_path / "corpus"
    run = pedes("corpus", "import", "--format", "cuhk-pedes", "--annotations", str(ann), "--images",
                str(tmp_path / "imgs"), "--out", str(out), "--shard-size", "4", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    run = pedes("corpus", "export", str(out), "--format", "cuhk-pedes", "--out", str(tmp_path / "irra"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    back = json.loads((tmp_path / "irra" / "reid_raw.json").read_text())

    def norm(es):
        return sorted((e["split"], e["id"], e["file_path"], tuple(c.strip() for c in e["captions"])) for e in es)

    assert all(set(e) == {"split", "captions", "file_path", "id"} for e in back)
    id_map = tmp_path / "irra" / "id_map.json"
    if contiguous:
        assert norm(back) == norm(entries) and not id_map.exists()
        return
    # gaps in the training ids: renumbered 1..N for IRRA, and id_map.json leads back to the original ids
    assert sorted({e["id"] for e in back if e["split"] == "train"}) == list(range(1, len(train_ids) + 1))
    original = {m["file_path"]: m["original_id"] for m in json.loads(id_map.read_text())}
    assert norm([{**e, "id": original[e["file_path"]]} for e in back]) == norm(entries)


def test_cuhk_pedes_export_of_an_mllm_corpus_numbers_identities_for_irra(lup, tmp_path):
    images, caps, names, files = lup
    out = tmp_path / "corpus"
    assert pedes("corpus", "import", "--format", "luperson-mllm", "--annotations", str(caps), "--images", str(images),
                 "--out", str(out), cwd=tmp_path).returncode == 0
    run = pedes("corpus", "export", str(out), "--format", "cuhk-pedes", "--out", str(tmp_path / "irra"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    back = json.loads((tmp_path / "irra" / "reid_raw.json").read_text())
    # IRRA: label = id - 1 must cover 0..N-1 on the training split
    assert sorted(e["id"] - 1 for e in back if e["split"] == "train") == list(range(len(names)))
    assert all(len(e["captions"]) == 4 for e in back)
    assert json.loads((tmp_path / "irra" / "id_map.json").read_text())[0]["original_id"] is None

    sample = pedes("corpus", "sample", str(out), "--kind", "dynamic", "-n", "2", "--json", cwd=tmp_path)
    rows = [json.loads(line) for line in sample.stdout.splitlines()]
    assert len(rows) == 2 and {r["kind"] for r in rows} == {"dynamic"}


def test_imports_show_a_progress_bar_not_a_line_per_shard(lup, tmp_path):
    images, caps, names, files = lup
    env_run = {**os.environ, "PYTHONPATH": str(REPO), "FORCE_COLOR": "1", "COLUMNS": "120"}
    run = subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", "corpus", "import", "--format",
                          "luperson-mllm", "--annotations", str(caps), "--images", str(images), "--out",
                          str(tmp_path / "c"), "--shard-size", "2"], cwd=tmp_path, env=env_run, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "import: shard 2" in run.stderr  # the bar (stderr, a terminal forced)
    assert "shard 0000" not in run.stdout and len(run.stdout.strip().splitlines()) == 1  # one summary line
