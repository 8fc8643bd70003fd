"""UFine3C (UFineBench, seed 004 §3.3), layout from the public README of Zplusdragon/UFineBench.

A cross-domain *evaluation* set (7,446 images, 37,939 queries, 2,250 persons) built from the test
sets of CUHK-PEDES, ICFG-PEDES and UFine6926 plus LLM-rewritten queries (Qwen-14B, Llama2-70B).
A JSON list, one object per image, every image with several queries of different styles::

    {"id": 2250, "source": "UFine6926", "split": "test", "file_path": "images/7446.jpg",
     "captions": ["...", "...", ...]}

Strictness (our choice, the README shows exactly these keys): ``source`` is required (a non-empty
string: the dataset the person comes from, kept as ``ImageRecord.source``) and ``split`` must be
``test`` — UFine3C has no training data (``records("train")`` is empty, ``num_train_ids`` = 0).
``id`` is unique across the three sources. Pass the folder holding ``images/`` as the image root.
"""

from __future__ import annotations

from pathlib import Path

from training.data.benchmarks.base import Benchmark, FormatSpec, load_format
from training.data.benchmarks.ufine6926 import UFINE_LICENSE

SPEC = FormatSpec(
    name="ufine3c",
    title="UFine3C",
    annotation_file="UFine3C annotation JSON",
    image_root="./",
    license=UFINE_LICENSE,
    splits=("test",),
    source_key="source",
)


def load(annotations: str | Path, images: str | Path, *, check_images: bool = True) -> Benchmark:
    """Load UFine3C (test split only)."""
    return load_format(SPEC, annotations, images, check_images=check_images)
