"""Benchmark fixtures: one small annotation file per public format (``fixtures/*.json``, written in
each format's exact layout) plus real tiny image files rendered for every listed path."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FIXTURES = Path(__file__).parent / "fixtures"

#: format name → (fixture file, the file's public name, image sub-folder of the dataset, path key)
PEDES_FORMATS: dict[str, tuple[str, str, str, str]] = {
    "cuhk-pedes": ("cuhk_pedes_reid_raw.json", "reid_raw.json", "imgs", "file_path"),
    "icfg-pedes": ("icfg_pedes.json", "ICFG-PEDES.json", "imgs", "file_path"),
    "rstpreid": ("rstpreid_data_captions.json", "data_captions.json", "imgs", "img_path"),
    "ufine6926": ("ufine6926.json", "ufine6926.json", ".", "file_path"),
    "ufine3c": ("ufine3c.json", "ufine3c.json", ".", "file_path"),
}


@dataclass(frozen=True)
class PedesDataset:
    name: str
    annotations: Path
    images: Path
    entries: list[dict]
    path_key: str
    sizes: dict[str, tuple[int, int]]  # rel path -> (width, height) as written


def render_images(root: Path, rel_paths: Sequence[str], *, seed: int = 0) -> dict[str, tuple[int, int]]:
    """Write one small noisy image per path (format from the extension); distinct content per path."""
    sizes = {}
    for i, rel in enumerate(rel_paths):
        if rel in sizes:
            continue
        w, h = 8 + i % 5, 16 + 2 * (i % 3)
        rng = np.random.default_rng([seed, i])
        arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(path)
        sizes[rel] = (w, h)
    return sizes


def build_dataset(base: Path, name: str, entries: list | None = None, *, images: bool = True) -> PedesDataset:
    """A dataset folder in the format's public layout (annotation file + image root)."""
    fixture, public, sub, key = PEDES_FORMATS[name]
    base.mkdir(parents=True, exist_ok=True)
    ann = base / public
    if entries is None:
        shutil.copyfile(FIXTURES / fixture, ann)
        entries = json.loads(ann.read_text())
    else:
        ann.write_text(json.dumps(entries))
    root = (base / sub).resolve()
    root.mkdir(parents=True, exist_ok=True)
    rels = [
        e[key]
        for e in entries
        if isinstance(e, dict) and isinstance(e.get(key), str) and e[key] and not e[key].startswith("/") and ".." not in e[key]
    ]
    sizes = render_images(root, rels) if images else {}
    return PedesDataset(name, ann, root, entries, key, sizes)


def fixture_entries(name: str) -> list[dict]:
    return json.loads((FIXTURES / PEDES_FORMATS[name][0]).read_text())


@pytest.fixture(scope="session")
def pedes_datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PedesDataset]:
    """Every format's fixture dataset, built once."""
    base = tmp_path_factory.mktemp("pedes_benchmarks")
    return {name: build_dataset(base / name, name) for name in PEDES_FORMATS}


@pytest.fixture
def make_pedes_dataset(tmp_path: Path) -> Callable[..., PedesDataset]:
    """``make(name, entries=None, images=True)``: a fresh dataset folder (custom entries for error cases)."""
    counter = iter(range(1_000_000))

    def make(name: str, entries: list | None = None, *, images: bool = True) -> PedesDataset:
        return build_dataset(tmp_path / f"{name}-{next(counter)}", name, entries, images=images)

    return make


@pytest.fixture
def pedes_entries() -> Callable[[str], list[dict]]:
    """``entries(name)``: a fresh copy of a format's fixture entries (to corrupt in a test)."""
    return fixture_entries
