"""Malformed annotations and missing images: one InputError naming the file and the first offenders."""

from __future__ import annotations

import copy
import re

import pytest

from pedes_core.errors import InputError
from training.data.benchmarks import MAX_REPORTED, load_benchmark


def _error(ds, name: str | None = None) -> str:
    with pytest.raises(InputError) as err:
        load_benchmark(name or ds.name, ds.annotations, ds.images)
    assert err.value.exit_code == 2
    return str(err.value)


def _corrupt(entries: list, index: int, **changes) -> list:
    entries = copy.deepcopy(entries)
    for key, value in changes.items():
        if value is _DROP:
            del entries[index][key]
        else:
            entries[index][key] = value
    return entries


_DROP = object()

CUHK_CASES = [
    # (entry index, changes, expected text in the message)
    (2, {"captions": _DROP}, "entry 2: missing key 'captions'"),
    (0, {"id": "11"}, "entry 0: 'id' must be an integer, got str '11'"),
    (1, {"id": True}, "entry 1: 'id' must be an integer, got bool True"),
    (3, {"id": -1}, "entry 3: 'id' must be >= 0, got -1"),
    (4, {"captions": "a man in black"}, "entry 4: 'captions' must be a list of strings, got str"),
    (5, {"captions": []}, "entry 5: 'captions' is empty"),
    (6, {"captions": ["a man", "   "]}, "entry 6: caption 1 is empty"),
    (7, {"captions": ["a man", 3]}, "entry 7: caption 1 must be a string, got int"),
    (8, {"split": "dev"}, "entry 8: unknown split 'dev' (expected one of train, val, test)"),
    (0, {"split": None}, "entry 0: 'split' must be a string, got null"),
    (1, {"file_path": "/abs/CUHK01/x.png"}, "entry 1: 'file_path' must be relative to the image root"),
    (2, {"file_path": "../outside.png"}, "entry 2: 'file_path' must be relative to the image root"),
    (3, {"file_path": ""}, "entry 3: 'file_path' must be a non-empty string"),
    (4, {"file_path": "CUHK01/0011001.png"}, "entry 4: 'file_path' 'CUHK01/0011001.png' is also entry 0 with id 11"),
]


@pytest.mark.parametrize(("index", "changes", "expected"), CUHK_CASES)
def test_malformed_cuhk_entry_is_named(make_pedes_dataset, pedes_entries, index, changes, expected):
    ds = make_pedes_dataset("cuhk-pedes", _corrupt(pedes_entries("cuhk-pedes"), index, **changes))
    msg = _error(ds)
    assert str(ds.annotations) in msg
    assert expected in msg
    assert "1 of 9 CUHK-PEDES annotation entries malformed" in msg


def test_entry_that_is_not_an_object(make_pedes_dataset, pedes_entries):
    entries = pedes_entries("cuhk-pedes")
    entries[3] = 42
    msg = _error(make_pedes_dataset("cuhk-pedes", entries))
    assert "entry 3: expected a JSON object, got int" in msg


def test_only_the_first_offenders_are_listed_with_the_total(make_pedes_dataset, pedes_entries):
    entries = pedes_entries("cuhk-pedes")
    for i in (1, 2, 4, 5, 6, 7, 8):
        entries[i]["split"] = "dev"
    msg = _error(make_pedes_dataset("cuhk-pedes", entries))
    assert "7 of 9" in msg
    listed = [int(i) for i in re.findall(r"entry (\d+):", msg)]
    assert listed == [1, 2, 4, 5, 6][:MAX_REPORTED]


def test_several_problems_of_one_entry_are_all_named(make_pedes_dataset, pedes_entries):
    entries = _corrupt(pedes_entries("cuhk-pedes"), 0, id="x", split="dev", captions=[])
    msg = _error(make_pedes_dataset("cuhk-pedes", entries))
    assert "entry 0: 'id' must be an integer" in msg and "unknown split 'dev'" in msg and "'captions' is empty" in msg


def test_rstpreid_requires_img_path(make_pedes_dataset, pedes_entries):
    entries = pedes_entries("rstpreid")
    entries[1]["file_path"] = entries[1].pop("img_path")
    msg = _error(make_pedes_dataset("rstpreid", entries))
    assert "entry 1: missing key 'img_path'" in msg and "data_captions.json" in msg


def test_ufine3c_is_strict_about_its_layout(make_pedes_dataset, pedes_entries):
    entries = pedes_entries("ufine3c")
    entries[0]["split"] = "train"
    del entries[2]["source"]
    entries[3]["source"] = ""
    msg = _error(make_pedes_dataset("ufine3c", entries))
    assert "3 of 4 UFine3C" in msg
    assert "entry 0: unknown split 'train' (expected one of test)" in msg
    assert "entry 2: missing key 'source'" in msg
    assert "entry 3: 'source' must be a non-empty string" in msg


def test_icfg_accepts_a_val_split(make_pedes_dataset, pedes_entries):
    entries = pedes_entries("icfg-pedes")
    entries[0]["split"] = "val"
    ds = make_pedes_dataset("icfg-pedes", entries)
    b = load_benchmark("icfg-pedes", ds.annotations, ds.images)
    assert [r.index for r in b.records("val")] == [0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[{"split": "train",', r"not valid JSON \(.* at line 1, column \d+\)"),
        ('{"annotations": []}', "must be a JSON list of objects, got a JSON dict"),
        ("[]", "hold no entries"),
    ],
)
def test_file_level_problems(make_pedes_dataset, text, expected):
    ds = make_pedes_dataset("cuhk-pedes")
    ds.annotations.write_text(text)
    msg = _error(ds)
    assert str(ds.annotations) in msg
    assert re.search(expected, msg)


def test_missing_annotation_file(make_pedes_dataset):
    ds = make_pedes_dataset("icfg-pedes")
    ds.annotations.unlink()
    msg = _error(ds)
    assert f"{ds.annotations}: ICFG-PEDES annotation file not found" in msg


def test_missing_images_are_counted_and_the_first_listed(make_pedes_dataset):
    ds = make_pedes_dataset("icfg-pedes")
    removed = [e["file_path"] for e in ds.entries][:7]
    for rel in removed:
        (ds.images / rel).unlink()
    msg = _error(ds)
    assert str(ds.images) in msg and str(ds.annotations) in msg
    assert "7 of 11 images" in msg
    listed = re.findall(r"entry (\d+): (\S+?)(?:,|$)", msg)
    assert [(int(i), p) for i, p in listed] == list(enumerate(removed))[:MAX_REPORTED]


def test_missing_image_root(make_pedes_dataset):
    ds = make_pedes_dataset("rstpreid", images=False)
    ds.images.rmdir()
    msg = _error(ds)
    assert f"{ds.images}: image directory not found" in msg


def test_image_check_can_be_skipped(make_pedes_dataset):
    ds = make_pedes_dataset("ufine6926", images=False)
    b = load_benchmark("ufine6926", ds.annotations, ds.images, check_images=False)
    assert len(b.all_records) == len(ds.entries)
