"""ICFG-PEDES (Ding et al., 2021), annotation file ``ICFG-PEDES.json``.

Public layout: ``ICFG-PEDES/ICFG-PEDES.json`` and ``ICFG-PEDES/imgs/`` (pass ``imgs/`` as the image
root). A JSON list with one object per image, the same keys as CUHK-PEDES::

    {"split": "train" | "test", "captions": ["..."], "file_path": "test/0027/0027_010_05_0303afternoon_1591_0.jpg",
     "processed_tokens": [[...]], "id": 27}

One caption per image. The original release has **no validation split**: by default ``val`` is empty
(``Benchmark.val_note`` says so) and callers that need one for model selection either pass
``val_fraction`` here (a deterministic hold-out of training identities, see
:func:`training.data.benchmarks.base.hold_out_val`) or hold out themselves
(``training.data.benchmark_dataset.training_splits``). A ``val`` entry in the file is accepted.
"""

from __future__ import annotations

from pathlib import Path

from training.data.benchmarks.base import Benchmark, FormatSpec, load_format

SPEC = FormatSpec(name="icfg-pedes", title="ICFG-PEDES", annotation_file="ICFG-PEDES.json", image_root="imgs/")


def load(annotations: str | Path, images: str | Path, *, val_fraction: float = 0.0, check_images: bool = True) -> Benchmark:
    """Load ICFG-PEDES (train/test; ``val`` empty unless ``val_fraction`` > 0)."""
    return load_format(SPEC, annotations, images, val_fraction=val_fraction, check_images=check_images)
