"""Benchmark → corpus: turn an annotated dataset into a Parquet corpus of human captions
(``pedes corpus import``, DESIGN §2/§5), so training reads one format.

Before anything is written: a person id that does not fit the corpus' int64 column is an
:class:`~pedes_core.errors.InputError` naming the file and the entry, and annotation entries that are
exact duplicates of an earlier one (same path, person id, captions, split) are dropped with a warning
that says how many (they would otherwise become extra captions of the same image).

Rows (``caption_gen.corpus.schema.CAPTION_SCHEMA``): one per caption, ``kind="human"``,
``model=f"human:{k}"``, ``person_id`` = the id in the annotation file (not remapped), ``split`` from
the file, ``image_path`` relative to the image root (recorded in ``corpus.json``), ``image_sha256`` /
``image_id`` / ``width`` / ``height`` from the decoded file (:func:`caption_gen.images.decode_image`:
EXIF orientation applied), ``instruction_id`` and the other generation columns null, validation
passed (human ground truth is not re-validated).

``k`` is the caption's index in its annotation entry. Choice for images whose *content* occurs
twice in a benchmark (two entries, the same or different paths, identical bytes → the same
``image_id``): the row key ``(image_id, kind, model, ...)`` must stay unique, so the second entry's
captions continue the numbering (``k`` = index among all captions of that image, in file order) when
its person id agrees; when it names a *different* person, its captions become reject rows
(``import:conflicting_duplicate``) — an image cannot belong to two people. Images that fail to
decode become one reject row per caption (stage ``import``, reason = the decoder's, caption text
kept), never a crash and never a silent drop.

Shards hold ``shard_size`` consecutive annotation entries (file order). The import is resumable: a
shard whose done marker exists is skipped (its rows are read back only to continue the duplicate
numbering), and every marker records a fingerprint of the import (format, annotation sha256, shard
size, splits); resuming into a corpus made from different input is refused. The run ends with
``CorpusWriter.finalize`` (name, config, sources with the dataset's license).

Descriptions (``descriptions=``, seed 000 §3): a JSON-lines file with one object per image holding
``file_path`` (relative to the image root, as in the annotations) and ``identity_text`` /
``clothing_text`` — the ``attributes.jsonl`` that ``pedes synth`` writes. Each image then also gets one
row of kind ``identity`` and one of kind ``clothing`` (``model="attributes"``: ground truth, validation
passed), written with the image's first entry only (the row key stays unique); the human captions are
unchanged. Images without a line get no description rows; lines naming images that are not imported
(other splits) are ignored; a malformed line is an :class:`~pedes_core.errors.InputError` naming the
file and line, raised before anything is written. The file's sha256 joins the resume fingerprint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caption_gen.corpus.errors import CorpusError
from caption_gen.corpus.rows import caption_row, reject_row
from caption_gen.images.decode import DEFAULT_MAX_PIXELS, ImageRejected, decode_image, hash_file
from caption_gen.images.discovery import ImageRef
from pedes_core.errors import InputError
from training.data.benchmarks import SPLITS, Benchmark, ImageRecord, load_benchmark

log = logging.getLogger(__name__)

HUMAN_KIND = "human"
IMPORT_STAGE = "import"
CONFLICT_REASON = "import:conflicting_duplicate"
DEFAULT_SHARD_SIZE = 1000
DESCRIPTION_MODEL = "attributes"
#: corpus kind → field of a descriptions line (``pedes synth``'s attributes.jsonl)
DESCRIPTION_FIELDS: dict[str, str] = {"identity": "identity_text", "clothing": "clothing_text"}


def human_model(k: int) -> str:
    """The ``model`` value of the ``k``-th human caption of an image (see caption_gen/corpus/schema.py)."""
    return f"{HUMAN_KIND}:{k}"


@dataclass(frozen=True)
class _Decoded:
    sha256: str
    image_id: str
    width: int
    height: int


@dataclass
class _Seen:
    """What earlier entries recorded about one image content."""

    captions: int
    person_id: int | None
    rel_path: str


@dataclass
class ImportResult:
    """Outcome of one import run."""

    out: Path
    manifest: dict[str, Any]
    shards_written: int
    shards_skipped: int
    rows: int
    rejects: int
    #: exact duplicate annotation entries that were skipped (:func:`drop_exact_duplicates`).
    duplicates: int = 0


#: the corpus ``person_id`` column is int64.
_PERSON_ID_RANGE = (-(2**63), 2**63 - 1)


def check_person_ids(records: Sequence[ImageRecord], annotations: str | Path) -> None:
    """:class:`InputError` naming the file and the entry of a person id the corpus cannot hold (int64)."""
    lo, hi = _PERSON_ID_RANGE
    for r in records:
        pid = r.person_id
        if pid is not None and not (lo <= pid <= hi):
            raise InputError(f"{annotations}: entry {r.index} ({r.rel_path}): person id {pid} is out of range "
                             f"(the corpus stores person ids as signed 64-bit integers, {lo}..{hi})")


def drop_exact_duplicates(records: Sequence[ImageRecord]) -> tuple[list[ImageRecord], int]:
    """Entries equal in every field but their position (path, person id, captions, split, source) are
    one entry written twice: keep the first, return how many were dropped. Entries that differ in any
    field stay (the duplicate-content rule of the module docstring handles them)."""
    seen: set[tuple] = set()
    kept: list[ImageRecord] = []
    for r in records:
        key = (r.rel_path, r.person_id, tuple(r.captions), r.split, r.source)
        if key in seen:
            continue
        seen.add(key)
        kept.append(r)
    return kept, len(records) - len(kept)


def load_descriptions(path: str | Path) -> dict[str, dict[str, str]]:
    """``file_path`` → {kind: text} from a descriptions JSON-lines file (module docstring)."""
    import json

    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read descriptions ({exc})") from None
    out: dict[str, dict[str, str]] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{n}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("file_path"), str) or not obj["file_path"]:
            raise InputError(f"{path}:{n}: expected an object with a non-empty string 'file_path'")
        texts = {}
        for kind, key in DESCRIPTION_FIELDS.items():
            value = obj.get(key)
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"{path}:{n}: '{key}' must be a non-empty string")
            texts[kind] = value
        out[obj["file_path"]] = texts
    return out


def _description_rows(record: ImageRecord, result: _Decoded, texts: dict[str, str]) -> list[dict]:
    return [
        caption_row(
            image_id=result.image_id,
            image_path=record.rel_path,
            image_sha256=result.sha256,
            width=result.width,
            height=result.height,
            person_id=record.person_id,
            split=record.split,
            kind=kind,
            model=DESCRIPTION_MODEL,
            caption=text,
        )
        for kind, text in texts.items()
    ]


def _decode(record: ImageRecord, max_pixels: int) -> _Decoded | ImageRejected:
    ref = ImageRef(path=record.rel_path, uri=str(record.image_path))
    try:
        d = decode_image(ref, max_pixels=max_pixels)
    except ImageRejected as rej:
        return rej
    return _Decoded(d.sha256, d.image_id, d.width, d.height)


def _reject_rows(record: ImageRecord, reason: str, detail: str, *, image_id: str | None, sha256: str | None,
                 first_k: int = 0) -> list[dict]:
    return [
        reject_row(
            image_id=image_id,
            image_path=record.rel_path,
            image_sha256=sha256,
            stage=IMPORT_STAGE,
            kind=HUMAN_KIND,
            model=human_model(first_k + k),
            reason=reason,
            reasons=[reason],
            detail=detail,
            caption=caption,
        )
        for k, caption in enumerate(record.captions)
    ]


def _shard_rows(records: Sequence[ImageRecord], decoded: Sequence[_Decoded | ImageRejected],
                seen: dict[str, _Seen],
                descriptions: dict[str, dict[str, str]] | None = None) -> tuple[list[dict], list[dict]]:
    rows: list[dict] = []
    rejects: list[dict] = []
    for record, result in zip(records, decoded, strict=True):
        if isinstance(result, ImageRejected):
            sha = result.sha256
            rejects += _reject_rows(
                record, result.reason, result.detail,
                image_id=sha[:20] if sha else None, sha256=sha,
            )
            continue
        prior = seen.get(result.image_id)
        if prior is not None and prior.person_id != record.person_id:
            rejects += _reject_rows(
                record, CONFLICT_REASON,
                f"same image content as {prior.rel_path} (person id {prior.person_id}); "
                f"entry {record.index} says person id {record.person_id}",
                image_id=result.image_id, sha256=result.sha256,
            )
            continue
        first_k = prior.captions if prior is not None else 0
        for k, caption in enumerate(record.captions):
            rows.append(
                caption_row(
                    image_id=result.image_id,
                    image_path=record.rel_path,
                    image_sha256=result.sha256,
                    width=result.width,
                    height=result.height,
                    person_id=record.person_id,
                    split=record.split,
                    kind=HUMAN_KIND,
                    model=human_model(first_k + k),
                    caption=caption,
                )
            )
        if prior is None:
            seen[result.image_id] = _Seen(len(record.captions), record.person_id, record.rel_path)
            if descriptions and record.rel_path in descriptions:
                rows += _description_rows(record, result, descriptions[record.rel_path])
        else:
            prior.captions += len(record.captions)
    return rows, rejects


def _read_back(root: Path, stats: dict[str, Any], seen: dict[str, _Seen]) -> None:
    """Continue the duplicate bookkeeping from a shard written by an earlier run."""
    import pyarrow.parquet as pq

    if not stats.get("captions_file"):
        return
    table = pq.read_table(root / stats["captions_file"], columns=["image_id", "image_path", "person_id", "model"],
                          filters=[("kind", "==", HUMAN_KIND)])
    for image_id, rel, pid, model in zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True):
        k = int(model.split(":", 1)[1])
        prior = seen.get(image_id)
        if prior is None:
            seen[image_id] = _Seen(k + 1, pid, rel)
        else:
            prior.captions = max(prior.captions, k + 1)


def _chunks(items: Sequence[ImageRecord], size: int) -> Iterable[tuple[int, Sequence[ImageRecord]]]:
    for shard, start in enumerate(range(0, len(items), size)):
        yield shard, items[start : start + size]


def import_benchmark(
    benchmark: Benchmark,
    out: str | Path,
    *,
    shard_size: int = DEFAULT_SHARD_SIZE,
    name: str | None = None,
    splits: Sequence[str] | None = None,
    workers: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    on_shard: Callable[[int, dict[str, Any], bool], None] | None = None,
    descriptions: str | Path | None = None,
) -> ImportResult:
    """Write ``benchmark`` (all splits, or ``splits``) as a corpus at ``out``; resumable; finalized.

    ``workers`` threads decode images; ``on_shard(shard, stats, skipped)`` is called after each shard;
    ``descriptions``: a JSON-lines file adding ``identity``/``clothing`` rows (module docstring).
    """
    from caption_gen.corpus.writer import CorpusWriter

    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    chosen = tuple(SPLITS) if not splits else tuple(dict.fromkeys(splits))
    unknown = [s for s in chosen if s not in SPLITS]
    if unknown:
        raise ValueError(f"unknown split(s) {', '.join(unknown)}; expected {', '.join(SPLITS)}")
    records = [r for r in benchmark.all_records if r.split in chosen]
    if not records:
        raise CorpusError(f"{benchmark.annotations}: no entries in split(s) {', '.join(chosen)} to import")
    check_person_ids(records, benchmark.annotations)
    records, duplicates = drop_exact_duplicates(records)
    if duplicates:
        log.info("%s: %d exact duplicate annotation entr%s skipped (the first of each is imported)",
                    benchmark.annotations, duplicates, "y" if duplicates == 1 else "ies")
    spec = benchmark.spec
    annotations_sha = hash_file(str(benchmark.annotations))
    fingerprint = {
        "format": spec.name,
        "annotations_sha256": annotations_sha,
        "shard_size": shard_size,
        "splits": sorted(chosen),
        "entries": len(records),
    }
    texts = load_descriptions(descriptions) if descriptions is not None else None
    if descriptions is not None:
        fingerprint["descriptions_sha256"] = hash_file(str(descriptions))
    root = Path(str(out)).expanduser().absolute()
    seen: dict[str, _Seen] = {}
    written = skipped = 0
    with CorpusWriter(root, image_root=str(benchmark.images)) as writer:
        done = writer.done_shards()
        n_shards = (len(records) + shard_size - 1) // shard_size
        for shard in sorted(done):
            previous = (writer.shard_stats(shard).get("extra") or {}).get("import")
            if previous != fingerprint:
                raise CorpusError(
                    f"{root}: shard {shard} was written by a different import "
                    f"({previous or 'not an import'}; now {fingerprint}); use a new --out or remove the corpus"
                )
            if shard >= n_shards:
                raise CorpusError(f"{root}: holds shard {shard} but this import has only {n_shards} shards")
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for shard, chunk in _chunks(records, shard_size):
                if shard in done:
                    stats = writer.shard_stats(shard)
                    _read_back(root, stats, seen)
                    skipped += 1
                    if on_shard is not None:
                        on_shard(shard, stats, True)
                    continue
                decoded = list(pool.map(lambda r: _decode(r, max_pixels), chunk))
                rows, rejects = _shard_rows(chunk, decoded, seen, texts)
                extra = {"import": fingerprint, "entries": [chunk[0].index, chunk[-1].index]}
                stats = writer.write_shard(shard, rows, rejects, extra_stats=extra)
                written += 1
                if on_shard is not None:
                    on_shard(shard, stats, False)
        captions = sum(len(r.captions) for r in records)
        manifest = writer.finalize(
            name=name or spec.name,
            config={
                "import": {
                    "format": spec.name,
                    "annotations": str(benchmark.annotations),
                    "images": str(benchmark.images),
                    "shard_size": shard_size,
                    "splits": list(chosen),
                    **({"descriptions": str(descriptions)} if descriptions is not None else {}),
                }
            },
            description=(
                f"Human captions of {spec.title} ({spec.annotation_file}) imported by `pedes corpus import`: "
                f"{len(records)} images, {captions} captions, splits {', '.join(chosen)}."
            ),
            sources=[
                {
                    "name": spec.title,
                    "license": spec.license,
                    "format": spec.name,
                    "annotations": str(benchmark.annotations),
                    "annotations_sha256": annotations_sha,
                    "images": str(benchmark.images),
                    "entries": len(records),
                    "captions": captions,
                    "val": benchmark.val_note,
                }
            ],
        )
    totals = manifest.get("totals", {})
    return ImportResult(
        out=root,
        manifest=manifest,
        shards_written=written,
        shards_skipped=skipped,
        rows=int(totals.get("rows", 0)),
        rejects=int(totals.get("rejects", 0)),
        duplicates=duplicates,
    )


def import_corpus(
    format: str,
    annotations: str | Path,
    images: str | Path,
    out: str | Path,
    **kwargs: Any,
) -> ImportResult:
    """:func:`load_benchmark` (strict: malformed annotations / missing images raise) then :func:`import_benchmark`."""
    benchmark = load_benchmark(format, annotations, images)
    return import_benchmark(benchmark, out, **kwargs)
