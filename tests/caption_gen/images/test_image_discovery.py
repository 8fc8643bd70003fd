"""Discovery: directory walk, list file, glob; local, file:// and memory:// — sorted and stable."""

from __future__ import annotations

import fsspec
import pytest

from caption_gen.images import ImageRef, discover_images
from pedes_core.errors import InputError


@pytest.fixture
def tree(tmp_path):
    for rel in ["b/2.jpg", "a/1.PNG", "a/deep/3.jpeg", "notes.txt.bak", "c/readme.md", ".hidden/4.jpg", "a/.5.jpg"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rel.encode())
    return tmp_path


def test_directory_walk_sorted_filtered(tree):
    refs = discover_images(tree)
    assert [r.path for r in refs] == ["a/1.PNG", "a/deep/3.jpeg", "b/2.jpg"]
    assert refs[0].uri == str(tree / "a/1.PNG")
    assert discover_images(str(tree)) == refs  # str or Path, same result
    assert [r.path for r in discover_images(tree, extensions=(".jpg",))] == ["b/2.jpg"]


def test_directory_walk_with_explicit_root(tree):
    refs = discover_images(tree / "a", root=tree)
    assert [r.path for r in refs] == ["a/1.PNG", "a/deep/3.jpeg"]


def test_list_file_relative_and_absolute(tree):
    lst = tree / "list.txt"
    lst.write_text(f"# comment\nb/2.jpg\n\n{tree / 'a/1.PNG'}\nmissing/x.jpg\nb/2.jpg\n")
    refs = discover_images(lst)
    # listed files are kept even if missing (decode rejects them), duplicates lines collapse
    assert refs == [
        ImageRef("a/1.PNG", str(tree / "a/1.PNG")),
        ImageRef("b/2.jpg", str(tree / "b/2.jpg")),
        ImageRef("missing/x.jpg", str(tree / "missing/x.jpg")),
    ]


def test_list_file_outside_root_keeps_full_path(tree, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    (other / "z.jpg").write_bytes(b"z")
    lst = tree / "list.lst"
    lst.write_text(f"{other / 'z.jpg'}\n")
    (ref,) = discover_images(lst)
    assert ref.path == ref.uri == str(other / "z.jpg")


def test_glob(tree):
    refs = discover_images(str(tree / "a" / "**" / "*.jpeg"))
    assert [r.path for r in refs] == ["deep/3.jpeg"]
    assert [r.path for r in discover_images(str(tree / "*" / "*.jpg"))] == ["b/2.jpg"]


def test_file_url(tree):
    refs = discover_images(f"file://{tree}")
    assert [r.path for r in refs] == ["a/1.PNG", "a/deep/3.jpeg", "b/2.jpg"]
    assert refs[0].uri == str(tree / "a/1.PNG")


def test_memory_filesystem_walk_list_and_glob():
    fs = fsspec.filesystem("memory")
    for rel in ["imgs/x/1.jpg", "imgs/2.png", "imgs/skip.txt"]:
        fs.pipe(f"/memdisc/{rel}", b"data")
    fs.pipe("/memdisc/list.txt", b"imgs/2.png\n")
    walked = discover_images("memory://memdisc/imgs")
    assert [r.path for r in walked] == ["2.png", "x/1.jpg"]
    assert walked[0].uri == "memory:///memdisc/imgs/2.png"
    with fsspec.open(walked[0].uri, "rb") as fh:
        assert fh.read() == b"data"
    assert [r.path for r in discover_images("memory://memdisc/list.txt")] == ["imgs/2.png"]
    assert [r.path for r in discover_images("memory://memdisc/imgs/*.png")] == ["2.png"]


def test_bad_sources(tree):
    with pytest.raises(InputError, match="no such directory"):
        discover_images(tree / "nope")
    with pytest.raises(InputError, match="not a list file"):
        discover_images(tree / "c/readme.md")
