"""Corpus fixtures: synthetic caption rows and one real corpus built from real (tiny) image files."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from caption_gen.corpus.rows import caption_row
from caption_gen.corpus.writer import CorpusWriter
from caption_gen.images import ImageRejected, discover_images, iter_images

KINDS = ("static", "dynamic")
MODELS = ("qwen-tiny", "llava-tiny")
WORDS = "a young man woman wearing red blue black white shirt jacket jeans shorts shoes backpack bag hair".split()


def synthetic_rows(shard: int, n_images: int, *, passed_every: int = 3) -> list[dict]:
    """Deterministic caption rows: n_images images x KINDS x MODELS (dynamic rows carry a template)."""
    rng = np.random.default_rng(shard)
    stamp = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    rows = []
    for i in range(n_images):
        image_id = f"s{shard:03d}i{i:04d}"
        for kind in KINDS:
            for model in MODELS:
                passed = (i + len(rows)) % passed_every != 0
                rows.append(
                    caption_row(
                        image_id=image_id,
                        image_path=f"imgs/{shard}/{i}.jpg",
                        image_sha256=f"{image_id:0<64}",
                        width=128,
                        height=256,
                        person_id=i % 7,
                        kind=kind,
                        model=model,
                        template_id="t01" if kind == "dynamic" else None,
                        caption=" ".join(rng.choice(WORDS, size=12)),
                        num_tokens=12,
                        finish_reason="stop",
                        sampling={"temperature": 0.7, "top_p": 0.9, "max_tokens": 77, "seed": shard},
                        validation={"passed": passed, "reasons": [] if passed else ["too_short"], "coverage": 0.5},
                        created_at=stamp,
                    )
                )
    return rows


@pytest.fixture(scope="session")
def make_rows() -> Callable[..., list[dict]]:
    return synthetic_rows


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory) -> Path:
    """Six good pedestrian-sized images, one duplicate, one zero-byte and one text file."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(1)
    for i in range(6):
        p = root / f"cam{i % 2}" / f"p{i}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (24, 12, 3), dtype=np.uint8)).save(p)
    shutil.copy(root / "cam0" / "p0.png", root / "cam1" / "copy_of_p0.png")
    (root / "cam0" / "empty.png").write_bytes(b"")
    (root / "cam1" / "notes.png").write_text("not an image")
    return root


def build_corpus(out: Path, image_dir: Path, *, shards: int = 3) -> dict:
    """images → decode/reject → caption rows (2 kinds x 2 models per image) → shards → finalize."""
    refs = discover_images(image_dir)
    per_shard = -(-len(refs) // shards)
    seen: dict[str, str] = {}
    with CorpusWriter(out, image_root=str(image_dir)) as writer:
        for s in range(shards):
            rows, rejects = [], []
            for result in iter_images(refs[s * per_shard : (s + 1) * per_shard], seen=seen):
                if isinstance(result, ImageRejected):
                    rejects.append(result.to_reject_row())
                    continue
                for kind in KINDS:
                    for model in MODELS:
                        rows.append(
                            caption_row(
                                image_id=result.image_id,
                                image_path=result.ref.path,
                                image_sha256=result.sha256,
                                width=result.width,
                                height=result.height,
                                kind=kind,
                                model=model,
                                template_id="t07" if kind == "dynamic" else None,
                                caption=f"A person photographed by {model} ({kind}).",
                            )
                        )
            writer.write_shard(s, rows, rejects, extra_stats={"images_in": len(rows) // 4 + len(rejects)})
        return writer.finalize(
            name="fixture-corpus",
            config={"backend": "none"},
            banks={"instructions": "0" * 64},
            sources=[{"name": "synthetic", "license": "cc0-1.0"}],
        )


@pytest.fixture(scope="session")
def built_corpus(tmp_path_factory, image_dir) -> Path:
    """A finalized corpus over ``image_dir`` (read-only for tests: copy it before changing it)."""
    out = tmp_path_factory.mktemp("corpus") / "c"
    build_corpus(out, image_dir)
    return out


@pytest.fixture
def corpus_copy(built_corpus, tmp_path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(built_corpus, dst)
    return dst
