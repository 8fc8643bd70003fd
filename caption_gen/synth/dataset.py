"""``pedes synth``: a deterministic synthetic pedestrian dataset in the CUHK-PEDES layout.

Output directory::

    imgs/<pid:05d>/<pid:05d>_<k:03d>.jpg   the images (``file_path`` in the annotations is relative to imgs/)
    reid_raw.json                           CUHK-PEDES format: [{"split", "captions", "file_path",
                                            "processed_tokens", "id"}, ...]
    attributes.jsonl                        per image: identity, outfit and camera attributes plus the
                                            identity-only and clothing-only texts
    synth.json                              parameters and counts; written last (its presence = complete)

Determinism: every random draw comes from a generator seeded by ``(seed, level, person[, index])``
(:class:`numpy.random.SeedSequence` entropy), so the same arguments give byte-identical files on the
same library versions, and person ``p`` looks the same whatever ``identities`` is.

Splits are by identity, as in CUHK-PEDES: the identities are shuffled with the seed and the first
``round(test_fraction·N)`` go to ``test``, the next ``round(val_fraction·N)`` to ``val`` (each at least
one when its fraction is positive and N ≥ 3), the rest to ``train``. Image ``k`` of a person wears
outfit ``k mod outfits_per_identity``, so every identity is seen in several outfits.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from caption_gen.synth.attributes import Identity, Outfit, sample_camera, sample_identity, sample_outfit
from caption_gen.synth.captions import PHRASINGS, clothing_text, full_caption, identity_text, pick_patterns
from caption_gen.synth.render import render_person
from pedes_core.errors import InputError

_ID_LEVEL, _OUTFIT_LEVEL, _IMAGE_LEVEL, _SPLIT_LEVEL = 1, 2, 3, 4
_TOKEN_RE = re.compile(r"[a-z]+(?:-[a-z]+)?")


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`render_dataset` wrote."""

    out: Path
    identities: int
    images: int
    by_split: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "identities": self.identities, "images": self.images, "by_split": self.by_split}


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def assign_splits(identities: int, seed: int, val_fraction: float, test_fraction: float) -> dict[int, str]:
    """Person id → split (module docstring)."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise InputError(f"val_fraction={val_fraction} and test_fraction={test_fraction} must be in [0, 1) with sum < 1")

    def count(fraction: float) -> int:
        n = round(fraction * identities)
        return max(n, 1) if fraction > 0 and identities >= 3 else n

    order = _rng(seed, _SPLIT_LEVEL).permutation(identities)
    n_test, n_val = count(test_fraction), count(val_fraction)
    split = {int(p): "train" for p in order}
    for p in order[:n_test]:
        split[int(p)] = "test"
    for p in order[n_test:n_test + n_val]:
        split[int(p)] = "val"
    return split


def person(pid: int, seed: int, outfits: int) -> tuple[Identity, list[Outfit]]:
    """Identity ``pid`` and its outfits (independent of how many identities are rendered)."""
    identity = sample_identity(pid, _rng(seed, _ID_LEVEL, pid))
    return identity, [sample_outfit(identity, o, _rng(seed, _OUTFIT_LEVEL, pid, o)) for o in range(outfits)]


def render_dataset(
    out: str | Path,
    *,
    identities: int,
    images_per_identity: int,
    seed: int = 0,
    size: tuple[int, int] = (256, 128),
    outfits_per_identity: int = 2,
    captions_per_image: int = 2,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    jpeg_quality: int = 92,
    phrasing: str = "default",
    first_id: int = 0,
    workers: int | None = None,
) -> SynthSummary:
    """Render ``identities × images_per_identity`` pedestrians into ``out`` (layout in the module docstring).

    ``workers`` processes render contiguous ranges of people (None: one per CPU core, at most one per 200
    people); every draw is seeded per person and image, so the files are the same for any ``workers``."""
    if identities < 1 or images_per_identity < 1:
        raise InputError(f"identities ({identities}) and images_per_identity ({images_per_identity}) must be >= 1")
    if outfits_per_identity < 1 or captions_per_image < 1:
        raise InputError("outfits_per_identity and captions_per_image must be >= 1")
    if phrasing not in PHRASINGS:
        raise InputError(f"phrasing {phrasing!r}: expected one of {sorted(PHRASINGS)}")
    if first_id < 0:
        raise InputError(f"first_id ({first_id}) must be >= 0")
    if size[0] < 32 or size[1] < 16:
        raise InputError(f"size {size} is too small (at least 32x16, given as height x width)")
    out = Path(out)
    marker = out / "synth.json"
    if marker.exists():
        marker.unlink()
    (out / "imgs").mkdir(parents=True, exist_ok=True)
    splits = {first_id + p: s for p, s in assign_splits(identities, seed, val_fraction, test_fraction).items()}
    outfits = min(outfits_per_identity, images_per_identity)

    job = _RenderJob(out=out, seed=seed, size=tuple(size), outfits=outfits, images_per_identity=images_per_identity,
                     captions_per_image=captions_per_image, jpeg_quality=jpeg_quality, phrasing=phrasing, splits=splits)
    n = workers if workers is not None else min(os.cpu_count() or 1, max(1, identities // 200))
    bounds = np.linspace(first_id, first_id + identities, max(1, min(n, identities)) + 1).astype(int)
    ranges = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    if len(ranges) == 1:
        parts = [job.render(*ranges[0])]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(len(ranges), mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(pool.map(job.render, *zip(*ranges, strict=True)))
    entries = [e for part in parts for e in part[0]]
    attributes = [a for part in parts for a in part[1]]

    _write_text(out / "reid_raw.json", json.dumps(entries, indent=1))
    _write_text(out / "attributes.jsonl", "\n".join(attributes) + "\n")
    by_split = dict(sorted(Counter(e["split"] for e in entries).items()))
    summary = SynthSummary(out=out, identities=identities, images=len(entries), by_split=by_split)
    params = {"identities": identities, "images_per_identity": images_per_identity, "seed": seed,
              "size": list(size), "outfits_per_identity": outfits, "captions_per_image": captions_per_image,
              "val_fraction": val_fraction, "test_fraction": test_fraction, "jpeg_quality": jpeg_quality,
              "phrasing": phrasing, "first_id": first_id}
    _write_text(marker, json.dumps({"params": params, **summary.to_dict(), "out": None}, indent=2))
    return summary


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@dataclass(frozen=True)
class _RenderJob:
    """What :func:`render_dataset` renders, for one range of people at a time (a worker process's share)."""

    out: Path
    seed: int
    size: tuple[int, int]
    outfits: int
    images_per_identity: int
    captions_per_image: int
    jpeg_quality: int
    phrasing: str
    splits: dict[int, str]

    def render(self, start: int, stop: int) -> tuple[list[dict[str, Any]], list[str]]:
        """Render people ``start … stop - 1``; their ``reid_raw.json`` entries and ``attributes.jsonl`` lines."""
        entries: list[dict[str, Any]] = []
        attributes: list[str] = []
        for pid in range(start, stop):
            identity, wardrobe = person(pid, self.seed, self.outfits)
            folder = self.out / "imgs" / f"{pid:05d}"
            folder.mkdir(exist_ok=True)
            for k in range(self.images_per_identity):
                outfit = wardrobe[k % self.outfits]
                rng = _rng(self.seed, _IMAGE_LEVEL, pid, k)
                camera = sample_camera(rng)
                image = render_person(identity, outfit, camera, size=self.size, rng=rng)
                rel = f"{pid:05d}/{pid:05d}_{k:03d}.jpg"
                image.save(self.out / "imgs" / rel, format="JPEG", quality=self.jpeg_quality)
                captions = [full_caption(identity, outfit, p, self.phrasing)
                            for p in pick_patterns(rng, min(self.captions_per_image, len(PHRASINGS[self.phrasing])), self.phrasing)]
                entries.append({
                    "split": self.splits[pid],
                    "captions": captions,
                    "file_path": rel,
                    "processed_tokens": [_TOKEN_RE.findall(c.lower()) for c in captions],
                    "id": pid,
                })
                attributes.append(json.dumps({
                    "file_path": rel,
                    "id": pid,
                    "split": self.splits[pid],
                    "outfit_id": outfit.outfit_id,
                    "identity": identity.to_dict(),
                    "outfit": outfit.to_dict(),
                    "camera": camera.to_dict(),
                    "identity_text": identity_text(identity),
                    "clothing_text": clothing_text(outfit),
                }, sort_keys=True))
        return entries, attributes
