"""Attribute records of a ``pedes synth`` folder: one per image (``attributes.jsonl``).

Identity separation (DESIGN §8): the captioner must never have seen the people a retrieval model is
evaluated on. Two rules keep it so:

* :func:`load_records` keeps only the images of the requested ``splits`` (default ``["train"]``), so a
  captioner trained on a synth folder never sees that folder's ``val``/``test`` identities;
* when no folder is given, :func:`caption_gen.captioner.train.train_captioner` renders its own
  training people with a *reserved* synth seed, :data:`CAPTIONER_SEED_BASE` + the captioner seed
  (synth seeds ``>= 10000`` are the captioner's; retrieval data sets use small seeds), and the
  quality benchmark uses yet another reserved seed (:data:`HELDOUT_SEED_BASE`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from caption_gen.synth.attributes import Identity, Outfit
from pedes_core.errors import InputError

#: synth seeds of the captioner's own training people (``CAPTIONER_SEED_BASE + seed``).
CAPTIONER_SEED_BASE = 10_000
#: synth seeds of held-out people for captioner quality checks (``HELDOUT_SEED_BASE + k``).
HELDOUT_SEED_BASE = 20_000


@dataclass(frozen=True)
class ImageRecord:
    """One synthetic image with its ground-truth attributes."""

    path: Path
    person_id: int
    split: str
    identity: Identity
    outfit: Outfit


def load_records(synthetic: str | Path, splits: list[str] | tuple[str, ...] | None = ("train",)) -> list[ImageRecord]:
    """Records of ``synthetic/attributes.jsonl`` whose split is in ``splits`` (``None``: every split)."""
    root = Path(synthetic)
    attr = root / "attributes.jsonl"
    if not attr.is_file():
        raise InputError(f"{root}: not a 'pedes synth' folder (attributes.jsonl is missing)")
    out: list[ImageRecord] = []
    for n, line in enumerate(attr.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if splits is not None and rec["split"] not in splits:
                continue
            out.append(ImageRecord(path=root / "imgs" / rec["file_path"], person_id=int(rec["id"]), split=rec["split"],
                                   identity=Identity(**rec["identity"]), outfit=Outfit(**rec["outfit"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{attr}:{n}: not an attribute record ({exc})") from None
    if not out:
        raise InputError(f"{attr}: no images in split(s) {list(splits or [])}")
    return out


def data_fingerprint(synthetic: str | Path) -> str:
    """sha256 of the folder's ``attributes.jsonl`` and ``synth.json`` params (the data half of the cache key)."""
    root = Path(synthetic)
    h = hashlib.sha256()
    h.update((root / "attributes.jsonl").read_bytes())
    marker = root / "synth.json"
    if marker.exists():
        h.update(json.dumps(json.loads(marker.read_text()).get("params", {}), sort_keys=True).encode())
    return h.hexdigest()
