"""Engine test helpers (a uniquely named module; the test directory is on sys.path): a real tiny corpus
(PNG files + Parquet shards via CorpusWriter), tiny CPU recipes, metrics.jsonl readers."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from caption_gen.corpus.rows import caption_row
from caption_gen.corpus.writer import CorpusWriter
from training.config import RecipeConfig

COLORS = {
    "red": (200, 30, 30),
    "blue": (30, 30, 200),
    "green": (30, 160, 30),
    "yellow": (220, 210, 40),
    "black": (15, 15, 15),
    "white": (235, 235, 235),
    "purple": (130, 40, 150),
    "orange": (240, 130, 20),
}


def make_color_corpus(root: Path, n_images: int = 48, *, shards: int = 2, seed: int = 0) -> Path:
    """Images whose upper/lower halves have a colour pair; captions name the colours (2 kinds +
    one caption that fails validation per image). Written through the real CorpusWriter."""
    rng = np.random.default_rng(seed)
    image_root = root / "images"
    image_root.mkdir(parents=True, exist_ok=True)
    pairs = list(itertools.permutations(COLORS, 2))
    stamp = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    writer = CorpusWriter(root / "corpus", image_root=str(image_root))
    per_shard = -(-n_images // shards)
    for shard in range(shards):
        rows = []
        for i in range(shard * per_shard, min(n_images, (shard + 1) * per_shard)):
            top, bottom = pairs[i % len(pairs)]
            arr = np.zeros((64, 32, 3), dtype=np.int16)
            arr[:32] = COLORS[top]
            arr[32:] = COLORS[bottom]
            arr += rng.integers(-12, 13, size=arr.shape, dtype=np.int16)
            rel = f"p{i:04d}.png"
            Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(image_root / rel)
            sha = hashlib.sha256((image_root / rel).read_bytes()).hexdigest()
            common = dict(
                image_id=sha[:20], image_path=rel, image_sha256=sha, width=32, height=64, created_at=stamp
            )
            rows.append(caption_row(**common, kind="static", model="m1",
                                    caption=f"a person in a {top} shirt and {bottom} trousers"))
            rows.append(caption_row(**common, kind="dynamic", model="m1", template_id="t1",
                                    caption=f"wearing {bottom} pants with a {top} top"))
            rows.append(caption_row(**common, kind="static", model="m2",
                                    caption="sorry I cannot describe this",
                                    validation={"passed": False, "reasons": ["refusal"]}))
        writer.write_shard(shard, rows)
    writer.finalize(name="color-corpus")
    return root / "corpus"


def tiny_recipe(corpus: Path, out: Path, **sections: Any) -> RecipeConfig:
    """A CPU recipe with the tiny open_clip model on ``corpus``; ``sections`` deep-update the dict."""
    data: dict[str, Any] = {
        "model": {
            "arch": "tiny", "image_size": [64, 32], "vision": {"width": 32, "layers": 2, "head_width": 16},
            "text": {"width": 32, "layers": 2}, "embed_dim": 32, "nam_layer": 1,
        },
        "method": {"name": "sdm", "params": {}},
        "data": {"corpus": {"root": str(corpus)}, "batch_size": 4, "num_workers": 0, "val_fraction": 0.2,
                 "augment": {"crop_padding": 2}},
        "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.01, "grad_clip": 1.0},
        "schedule": {"epochs": 2, "warmup_epochs": 0.5},
        "engine": {"device": "cpu", "output_dir": str(out), "run_name": "t", "checkpoint_every_steps": 3,
                   "keep_last_checkpoints": 50, "log_every_steps": 1, "progress": False, "tensorboard": False},
        "eval": {"batch_size": 16, "cmc_plot": False},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return RecipeConfig.model_validate(data)


def train_losses(run_dir: Path) -> list[tuple[int, float]]:
    """(global step, loss) of every ``train`` record of a run's metrics.jsonl."""
    out = []
    for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["type"] == "train":
            out.append((rec["step"], rec["loss"]))
    return out
