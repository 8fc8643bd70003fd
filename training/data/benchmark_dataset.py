"""Benchmark datasets (CUHK-PEDES, ICFG-PEDES, RSTPReid, ...) for training and evaluation.

The loaders (``training.data.benchmarks.load_benchmark``) return image–caption pairs
(``PedesSample``). Here they become:

* :class:`PairDataset` — training items, one per (image, caption) pair, with IRRA's identity labels;
* :func:`training_splits` — the train pairs and a *validation* split for model selection: the
  benchmark's own ``val`` split when it has one (CUHK-PEDES, RSTPReid), otherwise a deterministic
  hold-out of ``val_fraction`` of the training identities (ICFG-PEDES has none); never ``test``;
* :func:`retrieval_lists` — queries (captions) and gallery (unique images) of a split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from pedes_core.errors import InputError
from training.data.transforms import seeded_apply


@dataclass(frozen=True)
class TrainPair:
    """One training pair with the remapped identity label and global indices."""

    image_path: str
    caption: str
    person_id: int
    image_index: int


def _stable_fraction(key: str) -> float:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") / 2**64


def load(source: Any) -> Any:
    """``load_benchmark`` for a :class:`~training.config.BenchmarkSourceConfig`."""
    from training.data.benchmarks import load_benchmark

    return load_benchmark(source.name, source.annotations, source.images)


def training_splits(
    benchmark: Any, *, val_fraction: float, val_max_ids: int = 1000
) -> tuple[list[TrainPair], list[Any], int]:
    """(train pairs with ids remapped to 0..N-1, validation samples, N = number of train identities)."""
    train = list(benchmark.pairs("train"))
    if not train:
        raise InputError("benchmark has no training pairs")
    try:
        val = list(benchmark.pairs("val"))
    except (KeyError, ValueError):
        val = []
    if not val and val_fraction > 0:
        ids = sorted({s.person_id for s in train})
        held = sorted(ids, key=lambda p: _stable_fraction(f"pid:{p}"))
        n_val = min(val_max_ids, len(ids) - 1, max(1, int(round(len(ids) * val_fraction))))
        held_ids = set(held[:n_val])
        val = [s for s in train if s.person_id in held_ids]
        train = [s for s in train if s.person_id not in held_ids]
    remap = {p: i for i, p in enumerate(sorted({s.person_id for s in train}))}
    image_index: dict[str, int] = {}
    pairs = [
        TrainPair(
            image_path=str(s.image_path),
            caption=s.caption,
            person_id=remap[s.person_id],
            image_index=image_index.setdefault(str(s.image_path), len(image_index)),
        )
        for s in train
    ]
    return pairs, val, len(remap)


def retrieval_lists(samples: Sequence[Any]) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """(query captions, query ids, gallery image paths, gallery ids): every caption is a query,
    every distinct image once in the gallery (the CUHK-PEDES protocol)."""
    q_text = [s.caption for s in samples]
    q_ids = np.asarray([int(s.person_id) for s in samples])
    gallery: dict[str, int] = {}
    for s in samples:
        gallery.setdefault(str(s.image_path), int(s.person_id))
    return q_text, q_ids, list(gallery), np.asarray(list(gallery.values()))


class PairDataset(Dataset):
    """Training pairs → sample dicts for :class:`~training.data.collate.TokenizingCollate`.

    ``caption_id`` is the pair's index (the row of a method's per-caption state)."""

    def __init__(self, pairs: Sequence[TrainPair], transform: Any, *, seed: int = 0) -> None:
        self.pairs = list(pairs)
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def person_ids(self) -> np.ndarray:
        return np.asarray([p.person_id for p in self.pairs])

    @property
    def num_images(self) -> int:
        return len({p.image_index for p in self.pairs})

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        pair = self.pairs[i]
        path = Path(pair.image_path)
        try:
            with Image.open(path) as im:
                image = im.convert("RGB")
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot read benchmark image ({exc})") from None
        seed = hash((self.seed, self.epoch, i)) & 0x7FFFFFFF
        return {
            "image": seeded_apply(self.transform, image, seed),
            "caption": pair.caption,
            "person_id": pair.person_id,
            "caption_id": i,
            "image_index": pair.image_index,
        }
