"""Corpus → CUHK-PEDES ``reid_raw.json``, the annotation file IRRA-style trainers read (docs/formats.md).

One entry per ``image_path``: ``{"split", "captions", "file_path", "id"}``; ``file_path`` is relative to
the corpus' image root, ``captions`` are the image's rows of the chosen kinds (default: all) whose
validation passed — human captions first in annotation order (``human:0``, ``human:1``, …), then the
others in row-key order. ``split`` is the row's split (``train`` when the corpus has none: MLLM corpora
are pretraining data). Entries are ordered train, val, test, then by id and path.

Ids: IRRA turns a training id into a label as ``id - 1`` and requires the training labels to be
``0..N-1``, so training ids must be exactly ``1..N``. When the corpus' ids already are (an imported
benchmark) they are kept, so ``pedes corpus import --format cuhk-pedes`` → export gives the same entries
back. Otherwise — images without a person id (each becomes its own identity, as the MLLM4Text-ReID
trainer does for LUPerson-MLLM) or gaps in the training ids — training ids are renumbered ``1..N``
(original order; id-less images after, by path) and val/test images without an id get fresh ids after
the largest; the mapping goes to ``id_map.json`` beside the annotation file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caption_gen.corpus.errors import CorpusError

REID_RAW_NAME = "reid_raw.json"
ID_MAP_NAME = "id_map.json"
DEFAULT_SPLIT = "train"
_SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}


@dataclass
class ReidRawExport:
    """Outcome of an export."""

    path: Path
    entries: int
    captions: int
    by_split: dict[str, int] = field(default_factory=dict)
    renumbered: bool = False
    failed_validation: int = 0
    id_map: Path | None = None


def _caption_order(row: dict[str, Any]) -> tuple:
    model = row["model"]
    if row["kind"] == "human" and model.startswith("human:") and model[6:].isdigit():
        return (0, int(model[6:]), "", "", "")
    return (1, 0, row["kind"], model, (row["template_id"] or "") + "\0" + (row["style_id"] or ""))


def export_reid_raw(corpus: str | Path, out: str | Path, *, kinds: list[str] | None = None,
                    passed_only: bool = True) -> ReidRawExport:
    """Write ``<out>/reid_raw.json`` from ``corpus`` (module docstring)."""
    import pyarrow.compute as pc

    from caption_gen.corpus.reader import Corpus

    c = Corpus.open(corpus)
    flt = pc.field("kind").isin(kinds) if kinds else None
    rows = c.captions(columns=["image_path", "person_id", "split", "kind", "model", "template_id", "style_id",
                               "caption", "validation"], filter=flt).to_pylist()
    failed = 0
    images: dict[str, dict[str, Any]] = {}
    for r in rows:
        if passed_only and not r["validation"]["passed"]:
            failed += 1
            continue
        img = images.setdefault(r["image_path"], {"rows": [], "person_id": r["person_id"], "split": r["split"]})
        img["rows"].append(r)
        if img["person_id"] is None:
            img["person_id"] = r["person_id"]
        if img["split"] is None:
            img["split"] = r["split"]
    if not images:
        raise CorpusError(f"{c.root}: no captions to export" + (f" of kind(s) {', '.join(kinds)}" if kinds else ""))
    for img in images.values():
        img["split"] = img["split"] or DEFAULT_SPLIT
    train_ids = sorted({i["person_id"] for i in images.values() if i["split"] == "train" and i["person_id"] is not None})
    complete = all(i["person_id"] is not None for i in images.values())
    renumber = not complete or (train_ids and train_ids != list(range(1, len(train_ids) + 1)))
    mapping: list[dict[str, Any]] = []
    if renumber:
        new_of = {pid: n for n, pid in enumerate(train_ids, 1)}
        next_id = len(new_of) + 1
        for path in sorted(p for p, i in images.items() if i["split"] == "train" and i["person_id"] is None):
            images[path]["new_id"] = next_id
            next_id += 1
        others = [i["person_id"] for i in images.values() if i["split"] != "train" and i["person_id"] is not None]
        next_id = max([next_id, *(o + 1 for o in others)])
        for _, img in sorted(images.items()):
            if "new_id" in img:
                continue
            if img["split"] == "train":
                img["new_id"] = new_of[img["person_id"]]
            elif img["person_id"] is not None:
                img["new_id"] = img["person_id"]
            else:
                img["new_id"] = next_id
                next_id += 1
        mapping = [{"file_path": p, "original_id": i["person_id"], "id": i["new_id"]} for p, i in sorted(images.items())]
    entries = []
    for path, img in images.items():
        caps = [r["caption"] for r in sorted(img["rows"], key=_caption_order)]
        entries.append({"split": img["split"], "captions": caps, "file_path": path,
                        "id": int(img["new_id"] if renumber else img["person_id"])})
    entries.sort(key=lambda e: (_SPLIT_ORDER.get(e["split"], 3), e["split"], e["id"], e["file_path"]))
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    path = target / REID_RAW_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(entries, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    result = ReidRawExport(path=path, entries=len(entries), captions=sum(len(e["captions"]) for e in entries),
                           renumbered=bool(renumber), failed_validation=failed)
    for e in entries:
        result.by_split[e["split"]] = result.by_split.get(e["split"], 0) + 1
    if renumber:
        result.id_map = target / ID_MAP_NAME
        result.id_map.write_text(json.dumps(sorted(mapping, key=lambda m: m["id"]), indent=1) + "\n", encoding="utf-8")
    return result
