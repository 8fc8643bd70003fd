"""UFine6926 (UFineBench, seed 004 §3.2), layout from the public README of Zplusdragon/UFineBench.

A CUHK-PEDES-like JSON list, one object per image, two ultra-fine-grained captions (~81 words)::

    {"split": "train", "id": 1, "file_path": "images/1.jpg", "captions": ["...", "..."]}

``file_path`` is relative to the dataset folder (the one holding ``images/``): pass that folder as
the image root. Seed 004 §4.1: train = 4,926 identities / 18,577 images, test = 2,000 identities /
7,629 images; there is **no validation split** in the release (``val`` is empty unless
``val_fraction`` > 0; a ``val`` entry in the file is accepted). The README does not name the file;
we accept any file name. ``processed_tokens`` is not part of this format (ignored when present).
"""

from __future__ import annotations

from pathlib import Path

from training.data.benchmarks.base import Benchmark, FormatSpec, load_format

UFINE_LICENSE = "UFineBench license agreement (UFineBench_License.pdf, signed, research only)"

SPEC = FormatSpec(name="ufine6926", title="UFine6926", annotation_file="UFine6926 annotation JSON", image_root="./", license=UFINE_LICENSE)


def load(annotations: str | Path, images: str | Path, *, val_fraction: float = 0.0, check_images: bool = True) -> Benchmark:
    """Load UFine6926 (train/test; ``val`` empty unless ``val_fraction`` > 0)."""
    return load_format(SPEC, annotations, images, val_fraction=val_fraction, check_images=check_images)
