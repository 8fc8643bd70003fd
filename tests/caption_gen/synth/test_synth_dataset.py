"""Synthetic pedestrians: determinism, the CUHK-PEDES layout, fixed identities vs varying outfits, grounded
captions, learnable pixels, and the ``pedes synth`` command."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from caption_gen.synth import render_dataset
from caption_gen.synth.attributes import PALETTE
from caption_gen.synth.captions import clothing_text, identity_text
from caption_gen.synth.dataset import assign_splits, person
from flows.cli import main
from pedes_core.errors import InputError


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        if f.is_file():
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    render_dataset(out, identities=30, images_per_identity=6, seed=3, outfits_per_identity=3)
    return out


def _attrs(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "attributes.jsonl").read_text().splitlines()]


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, 5), (b, 5), (c, 6)):
        render_dataset(out, identities=4, images_per_identity=3, seed=seed)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_worker_processes_write_the_same_bytes(tmp_path):
    """Three processes render their ranges of people; the folder is byte-identical to one process's."""
    one, three = tmp_path / "one", tmp_path / "three"
    render_dataset(one, identities=7, images_per_identity=2, seed=5, workers=1)
    render_dataset(three, identities=7, images_per_identity=2, seed=5, workers=3)
    assert _digest(one) == _digest(three)


def test_person_does_not_depend_on_dataset_size(tmp_path):
    ident, wardrobe = person(7, seed=1, outfits=3)
    assert person(7, seed=1, outfits=2) == (ident, wardrobe[:2])
    render_dataset(tmp_path / "small", identities=3, images_per_identity=2, seed=1)
    render_dataset(tmp_path / "large", identities=6, images_per_identity=2, seed=1)
    for name in ("00002/00002_000.jpg", "00002/00002_001.jpg"):
        assert (tmp_path / "small/imgs" / name).read_bytes() == (tmp_path / "large/imgs" / name).read_bytes()


def test_cuhk_pedes_layout_loads_with_the_benchmark_loader(synth):
    from training.data.benchmarks import load_benchmark

    raw = json.loads((synth / "reid_raw.json").read_text())
    assert len(raw) == 180 and (synth / "synth.json").exists()
    assert set(raw[0]) == {"split", "captions", "file_path", "processed_tokens", "id"}
    bench = load_benchmark("cuhk-pedes", synth / "reid_raw.json", synth / "imgs")
    ids = {split: {r.person_id for r in bench.records(split)} for split in ("train", "val", "test")}
    assert all(ids.values())
    assert len(bench.pairs("train")) == 2 * len(bench.records("train"))  # two captions per image
    orig = {split: {e["id"] for e in raw if e["split"] == split} for split in ("train", "val", "test")}
    assert not (orig["train"] & orig["test"]) and not (orig["train"] & orig["val"]) and not (orig["val"] & orig["test"])
    with Image.open(synth / "imgs" / raw[0]["file_path"]) as im:
        assert im.size == (128, 256) and im.mode == "RGB"


def test_identity_fixed_outfits_vary_camera_varies(synth):
    rows = _attrs(synth)
    by_person: dict[int, list[dict]] = {}
    for r in rows:
        by_person.setdefault(r["id"], []).append(r)
    for _pid, items in by_person.items():
        assert len({json.dumps(r["identity"], sort_keys=True) for r in items}) == 1
        assert [r["outfit_id"] for r in items] == [0, 1, 2, 0, 1, 2]
        same_outfit = [r["outfit"] for r in items if r["outfit_id"] == 0]
        assert same_outfit[0] == same_outfit[1]
        assert len({json.dumps(r["camera"], sort_keys=True) for r in items}) == len(items)
    changed = sum(len({json.dumps(r["outfit"], sort_keys=True) for r in items}) > 1 for items in by_person.values())
    assert changed == len(by_person)


def test_captions_are_grounded_in_the_attributes(synth):
    raw = {e["file_path"]: e for e in json.loads((synth / "reid_raw.json").read_text())}
    for r in _attrs(synth):
        o, i = r["outfit"], r["identity"]
        captions = raw[r["file_path"]]["captions"]
        assert len(set(captions)) == 2
        for c in captions:
            assert f"{o['top_color']} {o['top_type']}" in c and f"{o['bottom_color']} {o['bottom_type']}" in c
            assert f"{o['shoes_color']} shoes" in c and i["gender"] in c
            assert (o["bag"] in c) == (o["bag"] != "none")
            assert c.endswith(".") and "  " not in c


def test_identity_and_clothing_texts_do_not_leak():
    ident, wardrobe = person(3, seed=0, outfits=1)
    outfit = wardrobe[0]
    it, ct = identity_text(ident), clothing_text(outfit)
    assert outfit.top_type not in it and "shoes" not in it and outfit.top_color not in it.replace(ident.hair_color, "")
    assert ident.gender not in ct and "hair" not in ct and ident.skin + " skin" not in ct


def test_pixels_are_learnable(synth):
    """A linear classifier on 32×16 thumbnails predicts the top colour of unseen people far above chance."""
    from sklearn.linear_model import LogisticRegression

    rows = _attrs(synth)
    x = np.stack([np.asarray(Image.open(synth / "imgs" / r["file_path"]).resize((16, 32)), np.float32).ravel() / 255
                  for r in rows])
    y = np.array([r["outfit"]["top_color"] for r in rows])
    test = np.array([r["id"] % 5 == 0 for r in rows])
    clf = LogisticRegression(max_iter=2000).fit(x[~test], y[~test])
    accuracy = (clf.predict(x[test]) == y[test]).mean()
    chance = max((y[test] == c).mean() for c in PALETTE)
    assert accuracy > 2 * chance, (accuracy, chance)


def test_splits_and_bad_arguments():
    split = assign_splits(20, seed=0, val_fraction=0.1, test_fraction=0.2)
    assert sorted(split.values()).count("test") == 4 and list(split.values()).count("val") == 2
    with pytest.raises(InputError):
        assign_splits(10, seed=0, val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(InputError):
        render_dataset("unused", identities=0, images_per_identity=1)


def test_cli_writes_dataset_and_rejects_bad_numbers(tmp_path, capsys):
    out = tmp_path / "cli"
    with pytest.raises(SystemExit) as exit_ok:
        main(["synth", "--out", str(out), "--identities", "3", "--images-per-identity", "2", "--seed", "1"])
    assert exit_ok.value.code in (0, None)
    assert len(json.loads((out / "reid_raw.json").read_text())) == 6
    assert "wrote 6 images of 3 identities" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_bad:
        main(["synth", "--out", str(tmp_path / "bad"), "--identities", "0"])
    assert exit_bad.value.code == 2


def test_heldout_phrasing_never_uses_default_patterns_and_first_id_offsets_people(tmp_path):
    """The miniature world's target benchmark (DESIGN.md §8): same attributes, other sentence patterns."""
    import json

    from caption_gen.synth import render_dataset
    from caption_gen.synth.attributes import Identity, Outfit
    from caption_gen.synth.captions import HELDOUT_PATTERNS, PATTERNS

    render_dataset(tmp_path / "d", identities=4, images_per_identity=2, seed=5, size=(64, 32))
    render_dataset(tmp_path / "h", identities=4, images_per_identity=2, seed=5, size=(64, 32),
                   phrasing="heldout", first_id=1000)
    default = json.loads((tmp_path / "d" / "reid_raw.json").read_text())
    heldout = json.loads((tmp_path / "h" / "reid_raw.json").read_text())
    assert {e["id"] for e in heldout} == {1000, 1001, 1002, 1003}
    assert all(e["file_path"].startswith(f"{e['id']:05d}/") for e in heldout)
    # a heldout caption is never what a default pattern writes for the same attributes, and vice versa
    attrs = [json.loads(line) for line in (tmp_path / "h" / "attributes.jsonl").read_text().splitlines()]
    for entry, attr in zip(heldout, attrs, strict=True):
        identity, outfit = Identity(**attr["identity"]), Outfit(**attr["outfit"])
        defaults = {p(identity, outfit) for p in PATTERNS}
        assert not set(entry["captions"]) & defaults
        assert set(entry["captions"]) <= {p(identity, outfit) for p in HELDOUT_PATTERNS}
    assert all(len(e["captions"]) == 2 for e in default + heldout)
