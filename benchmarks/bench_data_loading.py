"""Training data loading: samples/s from a 1M-row synthetic corpus with 2 DataLoader workers vs the
tiny-model training step rate on CPU (issue 5 benchmark: the loader must not be the bottleneck).

The corpus: ``--images`` distinct image ids × 4 kinds (static, dynamic, identity, clothing) = 1M caption
rows in 10 Parquet shards written through ``CorpusWriter`` (plus failed-validation rows that the index
drops); the image ids point to a pool of ``--pool`` real JPEG files (decoding cost is real, disk
footprint small). The loader is the training path: memory-mapped caption index → PIL decode → seed
002 §4.2 augmentation at 384×128 → CLIP tokenization in the collate. The baseline is the training
step (forward + backward + AdamW) of the smoke recipe's tiny model (``arch: tiny``) at the same batch
size and resolution, on synthetic tensors.

Usage: ``python benchmarks/bench_data_loading.py [--images 250000] [--batches 40] [--batch 64]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from PIL import Image
from torch.utils.data import DataLoader

from caption_gen.corpus.reader import Corpus
from caption_gen.corpus.schema import CAPTION_SCHEMA
from caption_gen.corpus.writer import CorpusWriter
from training.config import AugmentConfig
from training.data.collate import TokenizingCollate
from training.data.corpus_dataset import CorpusDataset, CorpusFilter, CorpusIndex, build_corpus_index
from training.data.samplers import GlobalBatchSampler, random_order
from training.data.transforms import build_train_transform
from training.engine.smoke import smoke_model_config
from training.engine.trainer import build_method
from training.tokenization import ClipTokenizer

KINDS = ("static", "dynamic", "identity", "clothing")
WORDS = "a man woman in red blue black white grey jacket shirt jeans shorts shoes bag backpack long short hair".split()
IMAGE_SIZE = (384, 128)


def write_corpus(root: Path, n_images: int, pool: int, shards: int = 10) -> Corpus:
    rng = np.random.default_rng(0)
    img_dir = root / "images"
    img_dir.mkdir(parents=True)
    for i in range(pool):
        arr = rng.integers(0, 255, (256, 96, 3), dtype=np.uint8)
        Image.fromarray(arr).save(img_dir / f"{i:05d}.jpg", quality=90)
    writer = CorpusWriter(root / "corpus", image_root=str(img_dir))
    stamp = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    per = n_images // shards
    vocab = np.array(WORDS)
    for s in range(shards):
        ids = np.arange(s * per, (s + 1) * per)
        n = len(ids) * len(KINDS)
        image_ids = [hashlib.sha256(str(i).encode()).hexdigest()[:20] for i in ids]
        rep = lambda xs: [x for x in xs for _ in KINDS]  # noqa: E731
        captions = [" ".join(vocab[rng.integers(0, len(vocab), 25)]) for _ in range(n)]
        passed = rng.random(n) > 0.02
        table = pa.table(
            {
                "image_id": rep(image_ids),
                "image_path": rep([f"{i % pool:05d}.jpg" for i in ids]),
                "image_sha256": rep([h + "0" * 44 for h in image_ids]),
                "width": pa.array([96] * n, pa.int32()),
                "height": pa.array([256] * n, pa.int32()),
                "person_id": pa.nulls(n, pa.int64()),
                "split": pa.nulls(n, pa.string()),
                "kind": list(KINDS) * len(ids),
                "model": ["qwen-vl"] * n,
                "template_id": pa.nulls(n, pa.string()),
                "style_id": pa.nulls(n, pa.string()),
                "instruction_id": pa.nulls(n, pa.string()),
                "instruction_sha256": pa.nulls(n, pa.string()),
                "caption": captions,
                "num_tokens": pa.array([25] * n, pa.int32()),
                "finish_reason": ["stop"] * n,
                "sampling": pa.nulls(n, CAPTION_SCHEMA.field("sampling").type),
                "validation": [{"passed": bool(p), "reasons": [], "covered": [], "coverage": None} for p in passed],
                "attempt": pa.array([1] * n, pa.int32()),
                "created_at": pa.array([stamp] * n, pa.timestamp("us", tz="UTC")),
            },
            schema=CAPTION_SCHEMA,
        )
        writer.write_shard(s, table)
    writer.finalize(name="bench-1m")
    return Corpus.open(root / "corpus")


def loader_rate(dataset, batch: int, batches: int, workers: int) -> float:
    sampler = GlobalBatchSampler(lambda e: random_order(len(dataset), 0, e), len(dataset), batch)
    loader = DataLoader(
        dataset, batch_sampler=sampler, num_workers=workers, collate_fn=TokenizingCollate(ClipTokenizer()),
        prefetch_factor=4 if workers else None,
    )
    it = iter(loader)
    for _ in range(3):  # warm-up: worker start, first memory-map pages
        next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch / (time.perf_counter() - t0)


def model_rate(batch: int, steps: int) -> float:
    from training.config import RecipeConfig

    recipe = RecipeConfig.model_validate(
        {"model": smoke_model_config(IMAGE_SIZE).model_dump(), "method": {"name": "nam_sdm"},
         "data": {"corpus": {"root": "."}}}
    )
    method = build_method(recipe, num_classes=batch, num_captions=batch)
    method.set_run_dir(tempfile.mkdtemp(prefix="bench-nam-"))
    opt = torch.optim.AdamW(method.parameters(), lr=1e-4)
    tok = ClipTokenizer()
    g = torch.Generator().manual_seed(0)
    b = {
        "images": torch.randn(batch, 3, *IMAGE_SIZE, generator=g),
        "text_tokens": tok([" ".join(WORDS[:25])] * batch),
        "person_ids": torch.arange(batch), "caption_ids": torch.arange(batch), "image_index": torch.arange(batch),
    }
    method.on_epoch_start(0)
    for _ in range(2):
        sum(v for k, v in method(b).items() if k.endswith("_loss")).backward()
        opt.step(); opt.zero_grad()  # noqa: E702
    t0 = time.perf_counter()
    for _ in range(steps):
        sum(v for k, v in method(b).items() if k.endswith("_loss")).backward()
        opt.step(); opt.zero_grad()  # noqa: E702
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=250_000)
    ap.add_argument("--pool", type=int, default=512)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        corpus = write_corpus(Path(tmp), args.images, args.pool)
        t_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        index_dir = build_corpus_index(corpus, CorpusFilter(), Path(tmp) / "cache")
        t_index = time.perf_counter() - t0
        index = CorpusIndex(index_dir, val_fraction=0.001)
        ds = CorpusDataset(index, corpus.image_root(), build_train_transform(IMAGE_SIZE, AugmentConfig()))
        index_mb = sum(p.stat().st_size for p in Path(index_dir).iterdir()) / 2**20
        print(f"corpus: {corpus.num_rows():,} rows ({index.num_captions:,} accepted), {index.num_images:,} images; "
              f"write {t_write:.1f} s, index build {t_index:.1f} s, index files {index_mb:.0f} MiB, "
              f"dataset pickled for a worker {len(pickle.dumps(ds)) / 2**20:.1f} MiB")
        rates = {w: loader_rate(ds, args.batch, args.batches, w) for w in (0, 2)}
    step = model_rate(args.batch, args.steps)
    print(f"loader, 0 workers : {rates[0]:8.1f} samples/s")
    print(f"loader, 2 workers : {rates[2]:8.1f} samples/s")
    print(f"tiny model step   : {step:8.1f} samples/s (nam_sdm, forward+backward+AdamW, batch {args.batch}, {IMAGE_SIZE})")
    print(f"ratio loader(2 workers) / model step: {rates[2] / step:.2f}x")


if __name__ == "__main__":
    main()
