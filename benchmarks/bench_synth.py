"""Synthetic renderer throughput: images/s at 256×128 on one core, vs the cost of JPEG-encoding and
writing an image of the same size (the floor any renderer that writes JPEGs pays), same run.

    .venv/bin/python benchmarks/bench_synth.py [--identities 250] [--images-per-identity 4] [--repeats 2]

* render only  = ``render_person`` (attributes drawn, shapes, rotation, crop, blur, lighting, noise) in memory;
* end to end   = ``render_dataset`` (render + JPEG write + captions + reid_raw.json + attributes.jsonl);
* baseline     = ``Image.save(JPEG)`` of a pre-made noisy 256×128 image, the same number of times.

Pinned to one core (CPU affinity). Best of ``--repeats``. Target: end to end ≥ 200 images/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from caption_gen.synth import render_dataset, render_person, sample_camera, sample_identity, sample_outfit


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--identities", type=int, default=250)
    parser.add_argument("--images-per-identity", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    n = args.identities * args.images_per_identity
    work = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    try:
        rng = np.random.default_rng(0)
        people = [sample_identity(i, rng) for i in range(args.identities)]
        jobs = [(p, sample_outfit(p, 0, rng), sample_camera(rng)) for p in people for _ in range(args.images_per_identity)]

        def render_only() -> None:
            for ident, outfit, cam in jobs:
                render_person(ident, outfit, cam, size=(256, 128), rng=rng)

        def end_to_end() -> None:
            render_dataset(work / "ds", identities=args.identities, images_per_identity=args.images_per_identity, seed=0)

        noisy = Image.fromarray(rng.integers(0, 255, (256, 128, 3), dtype=np.uint8))
        (work / "jpg").mkdir()

        def baseline() -> None:
            for i in range(n):
                noisy.save(work / "jpg" / f"{i}.jpg", format="JPEG", quality=92)

        t_render, t_e2e, t_base = (_best(f, args.repeats) for f in (render_only, end_to_end, baseline))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"date {dt.date.today()}  images {n} at 256x128, one core, best of {args.repeats}")
    print(f"render only        : {n / t_render:8.0f} images/s")
    print(f"end to end (synth) : {n / t_e2e:8.0f} images/s   (target >= 200)")
    print(f"baseline JPEG write: {n / t_base:8.0f} images/s")
    print(f"end to end / baseline time ratio: {t_e2e / t_base:.2f}x")


if __name__ == "__main__":
    main()
