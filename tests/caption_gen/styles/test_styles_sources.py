import json

import pytest

from caption_gen.styles.sources import load_style_texts
from pedes_core.errors import InputError


def test_text_file_skips_blank_lines_and_counts_them(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("one  text\n\n  two\n")
    src = load_style_texts(p)
    assert src.texts == ["one text", "two"] and src.kind == "text" and src.skipped == 1


def test_annotation_formats(tmp_path):
    cuhk = [{"id": 1, "file_path": "a.jpg", "captions": ["c1", "c2"], "split": "train"},
            {"id": 2, "file_path": "b.jpg", "captions": ["c3"], "split": "test"}]
    p = tmp_path / "reid_raw.json"
    p.write_text(json.dumps(cuhk))
    assert load_style_texts(p).texts == ["c1", "c2", "c3"]
    assert load_style_texts(p, split="test").texts == ["c3"]
    q = tmp_path / "x.json"
    q.write_text(json.dumps({"annotations": [{"caption": "d1"}, {"description": "d2"}]}))
    assert load_style_texts(q).texts == ["d1", "d2"]


def test_sampling_is_seeded(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("\n".join(f"t{i}" for i in range(100)))
    a = load_style_texts(p, max_texts=10, seed=1).texts
    assert a == load_style_texts(p, max_texts=10, seed=1).texts and len(a) == 10


@pytest.mark.parametrize("name,content,match", [
    ("a.json", "{", "not valid JSON"), ("b.json", "[{\"file_path\": \"x\"}]", "record 0: no caption field"),
    ("c.txt", "\n\n", "no descriptions found"), ("d.json", "5", "not a caption annotation file"),
])
def test_bad_sources_raise_input_error(tmp_path, name, content, match):
    p = tmp_path / name
    p.write_text(content)
    with pytest.raises(InputError, match=match):
        load_style_texts(p)


def test_missing_and_non_corpus_dir(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_style_texts(tmp_path / "nope.txt")
    with pytest.raises(InputError, match="must be a corpus"):
        load_style_texts(tmp_path)
