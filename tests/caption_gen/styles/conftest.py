"""Synthetic captions in four clearly different writing styles (planted labels) and a tiny
UFine-format annotation file, built once per session."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

COLORS = ["black", "white", "red", "blue", "green", "grey", "brown", "yellow", "pink", "purple"]
TOPS = ["jacket", "t-shirt", "sweater", "coat", "hoodie", "blouse", "shirt"]
BOTTOMS = ["jeans", "trousers", "shorts", "skirt", "pants"]
SHOES = ["sneakers", "boots", "sandals", "shoes", "heels"]
HAIR = ["long", "short", "curly", "shoulder-length", "straight"]
BAGS = ["backpack", "handbag", "shoulder bag", "umbrella", "suitcase"]
PEOPLE = [("woman", "she", "her"), ("man", "he", "his"), ("girl", "she", "her"), ("boy", "he", "his")]


def _attrs(rng: random.Random) -> dict[str, str]:
    who, subj, pos = rng.choice(PEOPLE)
    return {"who": who, "subj": subj, "pos": pos, "c1": rng.choice(COLORS), "c2": rng.choice(COLORS),
            "c3": rng.choice(COLORS), "c4": rng.choice(COLORS), "top": rng.choice(TOPS),
            "bottom": rng.choice(BOTTOMS), "shoes": rng.choice(SHOES), "hair": rng.choice(HAIR),
            "bag": rng.choice(BAGS)}


def terse(a: dict[str, str], rng: random.Random) -> str:
    items = [a["who"], f"{a['hair']} {a['c1']} hair", f"{a['c2']} {a['top']}", f"{a['c3']} {a['bottom']}",
             f"{a['c4']} {a['shoes']}"]
    if rng.random() < 0.5:
        items.append(a["bag"])
    return ", ".join(items)


def head_to_toe(a: dict[str, str], rng: random.Random) -> str:
    s = [f"The {a['who']} has {a['hair']} {a['c1']} hair.", f"{a['subj'].capitalize()} is wearing a {a['c2']} {a['top']}.",
         f"{a['subj'].capitalize()} also has {a['c3']} {a['bottom']} on.", f"On {a['pos']} feet are {a['c4']} {a['shoes']}."]
    if rng.random() < 0.5:
        s.append(f"{a['subj'].capitalize()} is carrying a {a['bag']}.")
    return " ".join(s)


def clothing_first_long(a: dict[str, str], rng: random.Random) -> str:
    tail = rng.choice([
        "while walking slowly along the crowded street and looking ahead with a calm expression on the face",
        "while standing near the entrance of a building and waiting patiently for somebody to arrive",
        "while crossing the road in the afternoon light with a relaxed and unhurried walking pace",
    ])
    return (f"Dressed in a {a['c2']} {a['top']} with {a['c3']} {a['bottom']} and a pair of {a['c4']} {a['shoes']} "
            f"that match the rest of the outfit quite well, a {a['who']} with {a['hair']} {a['c1']} hair is "
            f"holding a {a['bag']} in one hand {tail}")


def second_person(a: dict[str, str], rng: random.Random) -> str:
    return rng.choice([
        f"You will see a {a['who']} in a {a['c2']} {a['top']}; look for {a['pos']} {a['c4']} {a['shoes']} and you can't miss {a['pos']} {a['bag']}!",
        f"If you look closely, you'll notice a {a['who']} wearing a {a['c2']} {a['top']}; you can also spot {a['c4']} {a['shoes']}!",
        f"You should look for a {a['who']} with a {a['c2']} {a['top']}; your best clue is the {a['bag']} you'll see!",
    ])


STYLES = [terse, head_to_toe, clothing_first_long, second_person]


def make_styled_captions(per_style: int, seed: int = 0) -> tuple[list[str], list[int]]:
    rng = random.Random(seed)
    rows = [(STYLES[s](_attrs(rng), rng), s) for s in range(len(STYLES)) for _ in range(per_style)]
    rng.shuffle(rows)
    return [r[0] for r in rows], [r[1] for r in rows]


@pytest.fixture(scope="session")
def styled_captions() -> tuple[list[str], list[int]]:
    return make_styled_captions(per_style=60, seed=7)


@pytest.fixture(scope="session")
def styled_text_file(tmp_path_factory: pytest.TempPathFactory, styled_captions) -> Path:
    path = tmp_path_factory.mktemp("styles_src") / "captions.txt"
    path.write_text("\n".join(styled_captions[0]) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def ufine3c_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    """A tiny UFine3C-format annotation file (seed 004; the public UFineBench release uses the
    IRRA-style list of ``{"id", "file_path", "captions", "split"}`` records). Captions mix the four
    styles, two per image, as UFine3C mixes textual styles; returns the path and planted style of each
    caption in file order."""
    texts, styles = make_styled_captions(per_style=30, seed=11)
    records, planted = [], []
    for i in range(0, len(texts) - 1, 2):
        records.append({"id": i // 2, "file_path": f"test/{i // 2:04d}_c{i % 6}.jpg",
                        "captions": [texts[i], texts[i + 1]], "split": "test"})
        planted += [styles[i], styles[i + 1]]
    path = tmp_path_factory.mktemp("ufine3c") / "ufine3c.json"
    path.write_text(json.dumps(records, indent=1), encoding="utf-8")
    return path, planted


@pytest.fixture(scope="session")
def planted5() -> tuple[list[str], list[int]]:
    """Five planted styles from ``style_generator`` (attributes, lengths and wording vary inside a style)."""
    from style_generator import generate

    return generate(per_style=60, seed=21)


@pytest.fixture(scope="session")
def built_planted5(tmp_path_factory, planted5) -> Path:
    """``pedes styles build`` with default settings on the five planted styles (built once)."""
    from typer.testing import CliRunner

    from flows.cli import app

    src = tmp_path_factory.mktemp("planted5_src") / "captions.txt"
    src.write_text("\n".join(planted5[0]) + "\n", encoding="utf-8")
    out = tmp_path_factory.mktemp("planted5_out")
    res = CliRunner().invoke(app, ["styles", "build", "--source", str(src), "--out", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    (out / "cli_output.txt").write_text(res.output, encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def built_default(tmp_path_factory, styled_text_file) -> Path:
    """``pedes styles build`` with default settings on the planted-style captions (built once)."""
    from typer.testing import CliRunner

    from flows.cli import app

    out = tmp_path_factory.mktemp("styles_default")
    res = CliRunner().invoke(app, ["styles", "build", "--source", str(styled_text_file), "--out", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    (out / "cli_output.txt").write_text(res.output, encoding="utf-8")
    return out
