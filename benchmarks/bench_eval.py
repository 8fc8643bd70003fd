"""Evaluation speed: seconds to evaluate a 6,000-query × 3,000-image gallery (CUHK-PEDES test size)
with the tiny model on CPU, through :class:`eval.evaluator.Evaluator` (encode captions, decode +
encode gallery images at 384×128, cosine similarity, t2i and i2t metrics with mSD).

Baseline in the same run: the metrics alone (``eval.metrics.retrieval_metrics`` both directions on the
same 6,000 × 3,000 matrix) — the share of the total that is ranking rather than encoding.

Usage: ``python benchmarks/bench_eval.py [--queries 6000] [--gallery 3000] [--workers 2]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from eval.evaluator import Evaluator, RetrievalSet
from eval.metrics import retrieval_metrics
from training.config import RecipeConfig
from training.data.transforms import build_test_transform
from training.engine.smoke import smoke_model_config
from training.engine.trainer import build_method

WORDS = "a man woman in red blue black white grey jacket shirt jeans shorts shoes bag backpack long short hair".split()
IMAGE_SIZE = (384, 128)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=6000)
    ap.add_argument("--gallery", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    ids = np.arange(args.gallery) // 3  # ~3 images per identity, like CUHK-PEDES test
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.gallery):
            Image.fromarray(rng.integers(0, 255, (256, 96, 3), dtype=np.uint8)).save(Path(tmp) / f"{i:05d}.jpg")
        q_gallery = rng.integers(0, args.gallery, args.queries)
        data = RetrievalSet(
            "bench",
            [" ".join(rng.choice(WORDS, 25)) for _ in range(args.queries)],
            ids[q_gallery],
            [f"{i:05d}.jpg" for i in range(args.gallery)],
            ids,
            image_root=tmp,
        )
        recipe = RecipeConfig.model_validate(
            {"model": smoke_model_config(IMAGE_SIZE).model_dump(), "method": {"name": "sdm"}, "data": {"corpus": {"root": "."}}}
        )
        method = build_method(recipe, num_classes=10, num_captions=10)
        evaluator = Evaluator(
            method, tokenizer=method.tokenizer, transform=build_test_transform(IMAGE_SIZE),
            batch_size=args.batch, num_workers=args.workers,
        )
        t0 = time.perf_counter()
        result = evaluator.run(data)
        total = time.perf_counter() - t0
    sim, q_ids, g_ids = evaluator.similarity()
    t0 = time.perf_counter()
    retrieval_metrics(sim, q_ids, g_ids)
    retrieval_metrics(sim.T.contiguous(), g_ids, q_ids)
    metrics_only = time.perf_counter() - t0
    print(f"{args.queries} queries x {args.gallery} images, tiny model at {IMAGE_SIZE}, {args.workers} workers")
    print(f"Evaluator.run total       : {total:7.2f} s  (R1 {result.t2i['R1']:.2f}, random weights)")
    print(f"baseline: metrics only    : {metrics_only:7.2f} s  (t2i + i2t incl. mSD)")
    print(f"encoding share            : {(total - metrics_only) / total:.0%}; total / metrics = {total / metrics_only:.1f}x")


if __name__ == "__main__":
    main()
