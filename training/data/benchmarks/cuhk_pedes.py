"""CUHK-PEDES (Li et al., CVPR'17), annotation file ``reid_raw.json``.

Public layout: ``CUHK-PEDES/reid_raw.json`` and ``CUHK-PEDES/imgs/`` (pass ``imgs/`` as the image
root). The file is a JSON list with one object per image::

    {"split": "train" | "val" | "test", "captions": ["...", "..."], "file_path": "CUHK01/0363004.png",
     "processed_tokens": [[...], [...]], "id": 1}

``file_path`` is relative to ``imgs/``; ``id`` is the person id; usually two captions per image from
different annotators. ``processed_tokens`` is ignored (we tokenize ourselves). This is also the format
``pedes synth`` writes (``DIR/reid_raw.json`` + ``DIR/imgs/``).
"""

from __future__ import annotations

from pathlib import Path

from training.data.benchmarks.base import Benchmark, FormatSpec, load_format

SPEC = FormatSpec(name="cuhk-pedes", title="CUHK-PEDES", annotation_file="reid_raw.json", image_root="imgs/")


def load(annotations: str | Path, images: str | Path, *, val_fraction: float = 0.0, check_images: bool = True) -> Benchmark:
    """Load CUHK-PEDES (train/val/test from the file)."""
    return load_format(SPEC, annotations, images, val_fraction=val_fraction, check_images=check_images)
