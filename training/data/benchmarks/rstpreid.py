"""RSTPReid (Zhu et al., ACM MM'21, DSSL), annotation file ``data_captions.json``.

Public layout: ``RSTPReid/data_captions.json`` and ``RSTPReid/imgs/`` (pass ``imgs/`` as the image
root). A JSON list with one object per image::

    {"id": 0, "img_path": "0000_c14_0031.jpg", "captions": ["...", "..."], "split": "train" | "val" | "test"}

The image path key is ``img_path`` (not ``file_path``); two captions per image in the release (any
non-empty number is accepted).
"""

from __future__ import annotations

from pathlib import Path

from training.data.benchmarks.base import Benchmark, FormatSpec, load_format

SPEC = FormatSpec(
    name="rstpreid", title="RSTPReid", annotation_file="data_captions.json", image_root="imgs/", path_key="img_path"
)


def load(annotations: str | Path, images: str | Path, *, val_fraction: float = 0.0, check_images: bool = True) -> Benchmark:
    """Load RSTPReid (train/val/test from the file)."""
    return load_format(SPEC, annotations, images, val_fraction=val_fraction, check_images=check_images)
