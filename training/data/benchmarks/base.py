"""Shared machinery of the benchmark loaders: strict annotation parsing, image checks, splits,
train-id remapping and the :class:`Benchmark` object (DESIGN.md §5).

Every supported format is a JSON list of objects, one per image, holding a person id, a path
relative to the image root, a split name and a list of captions; formats differ only in key names
and allowed splits, which a :class:`FormatSpec` states. Parsing is strict:

* the file must exist and hold a JSON list;
* each entry must be an object with every required key; ``id`` a non-negative int (not bool); the
  path a non-empty relative string without ``..``; ``split`` one of the format's splits;
  ``captions`` a non-empty list of non-blank strings (each caption is stripped of surrounding
  whitespace, nothing else is changed); extra keys (``processed_tokens``, ...) are ignored;
* one image path listed twice with a different id or split is a conflict;
* every image file must exist under the image root.

Problems are collected over the whole file and raised as one :class:`~pedes_core.errors.InputError`
naming the file, the number of offending entries and the first :data:`MAX_REPORTED` of them
(``entry <index>: <what is wrong>``). Missing images are reported the same way with their total.

Splits and labels:

* ``records(split)`` / ``pairs(split)`` for ``split`` in ``train|val|test``; a split the benchmark
  does not have returns an empty list (e.g. ``val`` of ICFG-PEDES, ``train`` of UFine3C);
* on ``train`` the pairs' ``person_id`` is remapped to ``0..N-1`` in sorted order of the original ids
  (``original_person_id`` keeps the original; ``num_train_ids`` = N); ``val``/``test`` keep originals;
* ``val_fraction`` > 0 (only for files without a ``val`` split, e.g. ICFG-PEDES) moves a
  deterministic share of the *training identities* to ``val``: identities are ordered by a keyed
  BLAKE2b hash of ``"<benchmark>:<id>"`` and the first ``round(fraction × N)`` (at least 1, at most
  N − 1) are held out, all their images with them — the same ids on every machine and run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pedes_core.errors import InputError
from training.data.benchmarks.records import SPLITS, ImageRecord, PedesSample

#: How many offending entries / missing images an error message lists (the total is always given).
MAX_REPORTED = 5


@dataclass(frozen=True)
class FormatSpec:
    """How one public annotation format spells its fields."""

    name: str  # registry name, e.g. "cuhk-pedes"
    title: str  # human name, e.g. "CUHK-PEDES"
    annotation_file: str  # the file's public name, e.g. "reid_raw.json"
    image_root: str  # the folder the paths are relative to, in the public release
    path_key: str = "file_path"
    id_key: str = "id"
    split_key: str = "split"
    captions_key: str = "captions"
    splits: tuple[str, ...] = SPLITS
    source_key: str | None = None  # a required string naming the sub-dataset (UFine3C)
    license: str = "the dataset authors' terms of use (research only)"  # goes into an imported corpus' card

    @property
    def required_keys(self) -> tuple[str, ...]:
        keys = (self.split_key, self.id_key, self.path_key, self.captions_key)
        return keys + ((self.source_key,) if self.source_key else ())


def _entries_word(n: int) -> str:
    return "entry" if n == 1 else "entries"


def read_annotation_list(annotations: str | Path, spec_title: str = "benchmark") -> list[Any]:
    """Read a JSON annotation file that must hold a list; :class:`InputError` naming the file otherwise."""
    path = Path(annotations)
    if not path.is_file():
        raise InputError(f"{path}: {spec_title} annotation file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read {spec_title} annotations ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(data, list):
        raise InputError(
            f"{path}: {spec_title} annotations must be a JSON list of objects, got a JSON {type(data).__name__}"
        )
    if not data:
        raise InputError(f"{path}: {spec_title} annotations hold no entries")
    return data


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check_entry(spec: FormatSpec, entry: Any) -> tuple[list[str], dict[str, Any] | None]:
    """(problems of one entry, its normalized fields when there are none)."""
    if not isinstance(entry, dict):
        return [f"expected a JSON object, got {_type_name(entry)}"], None
    problems = [f"missing key '{k}'" for k in spec.required_keys if k not in entry]
    if problems:
        return problems, None
    pid = entry[spec.id_key]
    if not isinstance(pid, int) or isinstance(pid, bool):
        problems.append(f"'{spec.id_key}' must be an integer, got {_type_name(pid)} {pid!r}")
    elif pid < 0:
        problems.append(f"'{spec.id_key}' must be >= 0, got {pid}")
    rel = entry[spec.path_key]
    if not isinstance(rel, str) or not rel.strip():
        problems.append(f"'{spec.path_key}' must be a non-empty string, got {_type_name(rel)} {rel!r}")
    else:
        pure = PurePosixPath(rel)
        if pure.is_absolute() or ".." in pure.parts:
            problems.append(f"'{spec.path_key}' must be relative to the image root without '..', got {rel!r}")
    split = entry[spec.split_key]
    if not isinstance(split, str):
        problems.append(f"'{spec.split_key}' must be a string, got {_type_name(split)} {split!r}")
    elif split not in spec.splits:
        problems.append(f"unknown split {split!r} (expected one of {', '.join(spec.splits)})")
    source = None
    if spec.source_key:
        source = entry[spec.source_key]
        if not isinstance(source, str) or not source.strip():
            problems.append(f"'{spec.source_key}' must be a non-empty string, got {_type_name(source)} {source!r}")
    caps = entry[spec.captions_key]
    captions: list[str] = []
    if not isinstance(caps, list):
        problems.append(f"'{spec.captions_key}' must be a list of strings, got {_type_name(caps)}")
    elif not caps:
        problems.append(f"'{spec.captions_key}' is empty")
    else:
        for k, cap in enumerate(caps):
            if not isinstance(cap, str):
                problems.append(f"caption {k} must be a string, got {_type_name(cap)}")
            elif not cap.strip():
                problems.append(f"caption {k} is empty")
            else:
                captions.append(cap.strip())
    if problems:
        return problems, None
    return [], {"rel_path": str(PurePosixPath(rel)), "person_id": pid, "split": split, "captions": captions, "source": source}


def _raise_problems(path: Path, spec: FormatSpec, bad: list[tuple[int, list[str]]], total: int) -> None:
    shown = "; ".join(f"entry {i}: {', '.join(p)}" for i, p in bad[:MAX_REPORTED])
    raise InputError(
        f"{path}: {len(bad)} of {total} {spec.title} annotation {_entries_word(total)} malformed "
        f"(format: {spec.annotation_file} with keys {', '.join(spec.required_keys)}); "
        f"first {min(len(bad), MAX_REPORTED)}: {shown}"
    )


def parse_entries(spec: FormatSpec, data: Sequence[Any], annotations: Path, images: Path) -> list[ImageRecord]:
    """Validate every entry of a loaded annotation list and turn them into :class:`ImageRecord`s."""
    bad: list[tuple[int, list[str]]] = []
    records: list[ImageRecord] = []
    first_seen: dict[str, tuple[int, int, str]] = {}
    for index, entry in enumerate(data):
        problems, fields = _check_entry(spec, entry)
        if fields is not None:
            prev = first_seen.get(fields["rel_path"])
            if prev is None:
                first_seen[fields["rel_path"]] = (index, fields["person_id"], fields["split"])
            elif (prev[1], prev[2]) != (fields["person_id"], fields["split"]):
                problems = [
                    f"'{spec.path_key}' {fields['rel_path']!r} is also entry {prev[0]} with "
                    f"id {prev[1]} / split {prev[2]!r}, here id {fields['person_id']} / split {fields['split']!r}"
                ]
        if problems:
            bad.append((index, problems))
            continue
        assert fields is not None
        records.append(
            ImageRecord(
                rel_path=fields["rel_path"],
                image_path=images / fields["rel_path"],
                person_id=fields["person_id"],
                captions=fields["captions"],
                split=fields["split"],
                index=index,
                source=fields["source"],
            )
        )
    if bad:
        _raise_problems(annotations, spec, bad, len(data))
    return records


def check_images_exist(records: Sequence[ImageRecord], annotations: Path, images: Path) -> None:
    """Every record's image must be a file under the image root; else one :class:`InputError`."""
    if not images.is_dir():
        raise InputError(f"{images}: image directory not found (images of {annotations})")
    missing = [r for r in records if not r.image_path.is_file()]
    if missing:
        shown = ", ".join(f"entry {r.index}: {r.rel_path}" for r in missing[:MAX_REPORTED])
        raise InputError(
            f"{images}: {len(missing)} of {len(records)} images listed in {annotations} are missing; "
            f"first {min(len(missing), MAX_REPORTED)}: {shown}"
        )


def _stable_rank(key: str) -> bytes:
    return hashlib.blake2b(key.encode(), digest_size=16).digest()


def hold_out_val(records: list[ImageRecord], fraction: float, *, key: str) -> list[ImageRecord]:
    """Move a deterministic ``fraction`` of the train identities (with all their images) to ``val``."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {fraction}")
    if fraction == 0.0:
        return records
    if any(r.split == "val" for r in records):
        raise ValueError("val_fraction is only for annotations without a 'val' split; this file has one")
    ids = sorted({r.person_id for r in records if r.split == "train"})
    if len(ids) < 2:
        raise ValueError(f"val_fraction needs at least 2 training identities, found {len(ids)}")
    n_val = min(len(ids) - 1, max(1, round(fraction * len(ids))))
    held = set(sorted(ids, key=lambda p: _stable_rank(f"{key}:{p}"))[:n_val])
    return [
        dataclasses.replace(r, split="val") if r.split == "train" and r.person_id in held else r for r in records
    ]


class Benchmark:
    """A loaded benchmark: records per split, (image, caption) pairs, train-label remapping."""

    def __init__(self, spec: FormatSpec, annotations: Path, images: Path, records: list[ImageRecord], *, val_note: str):
        self.spec = spec
        self.name = spec.name
        self.annotations = annotations
        self.images = images
        self.val_note = val_note
        self._records = list(records)
        self._by_split: dict[str, list[ImageRecord]] = {s: [] for s in SPLITS}
        for r in self._records:
            self._by_split[r.split].append(r)
        self.train_id_map: dict[int, int] = {
            pid: label for label, pid in enumerate(sorted({r.person_id for r in self._by_split["train"]}))
        }

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits that hold at least one record, in ``train, val, test`` order."""
        return tuple(s for s in SPLITS if self._by_split[s])

    @property
    def num_train_ids(self) -> int:
        """N, the number of training identities (train labels are ``0..N-1``)."""
        return len(self.train_id_map)

    @property
    def all_records(self) -> list[ImageRecord]:
        """Every record in annotation-file order."""
        return list(self._records)

    @staticmethod
    def _check_split(split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")

    def records(self, split: str) -> list[ImageRecord]:
        """The split's records (original person ids), in annotation-file order."""
        self._check_split(split)
        return list(self._by_split[split])

    def pairs(self, split: str) -> list[PedesSample]:
        """One :class:`PedesSample` per caption of the split (train ids remapped to ``0..N-1``)."""
        self._check_split(split)
        remap = self.train_id_map if split == "train" else None
        return [
            PedesSample(
                image_path=r.image_path,
                rel_path=r.rel_path,
                person_id=remap[r.person_id] if remap is not None else r.person_id,
                caption=caption,
                caption_index=k,
                split=split,
                original_person_id=r.person_id,
            )
            for r in self._by_split[split]
            for k, caption in enumerate(r.captions)
        ]

    def summary(self) -> dict[str, Any]:
        """Counts per split: images, captions, identities."""
        return {
            "name": self.name,
            "annotations": str(self.annotations),
            "images": str(self.images),
            "val": self.val_note,
            "splits": {
                s: {
                    "images": len(recs),
                    "captions": sum(len(r.captions) for r in recs),
                    "identities": len({r.person_id for r in recs}),
                }
                for s, recs in self._by_split.items()
            },
        }

    def __repr__(self) -> str:
        counts = ", ".join(f"{s}={len(self._by_split[s])}" for s in SPLITS)
        return f"Benchmark({self.name!r}, {counts}, num_train_ids={self.num_train_ids})"


def build_benchmark(
    spec: FormatSpec,
    data: Sequence[Any],
    annotations: str | Path,
    images: str | Path,
    *,
    val_fraction: float = 0.0,
    check_images: bool = True,
) -> Benchmark:
    """Validate ``data`` (the loaded annotation list) against ``spec`` and build the :class:`Benchmark`."""
    ann = Path(annotations).expanduser().absolute()
    root = Path(images).expanduser().absolute()
    records = parse_entries(spec, data, ann, root)
    if check_images:
        check_images_exist(records, ann, root)
    has_val = any(r.split == "val" for r in records)
    if val_fraction:
        records = hold_out_val(records, val_fraction, key=spec.name)
        note = f"held out: {val_fraction:g} of the training identities (deterministic hash)"
    elif has_val:
        note = "from the annotation file"
    else:
        note = "none (the annotation file has no val split)"
    return Benchmark(spec, ann, root, records, val_note=note)


def load_format(
    spec: FormatSpec,
    annotations: str | Path,
    images: str | Path,
    *,
    val_fraction: float = 0.0,
    check_images: bool = True,
) -> Benchmark:
    """Read ``annotations`` (a JSON list in ``spec``'s format) and build the :class:`Benchmark`."""
    data = read_annotation_list(annotations, spec.title)
    return build_benchmark(spec, data, annotations, images, val_fraction=val_fraction, check_images=check_images)
