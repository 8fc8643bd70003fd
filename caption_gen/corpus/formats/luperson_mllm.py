"""LUPerson-MLLM caption files ↔ corpus (seed 002 §3.1; layout in docs/formats.md).

The released LUPerson-MLLM corpus is one JSON object ``{image path: caption}`` per instruction × MLLM,
named ``Ts-<model>.json`` (captions of the static instruction T^s) and ``Td-<model>.json`` (the dynamic,
template-diversified instruction T^d), e.g. ``Ts-qwen.json``, ``Td-qwen.json``, ``Ts-shikra.json``,
``Td-shikra.json``. The MLLM4Text-ReID trainer merges them per image *basename*.

Import (:func:`import_luperson_mllm`): ``Ts``/``Td`` → kind ``static``/``dynamic``, the rest of the name
→ ``model``; each key is resolved to a file under the image root: the key itself when relative, else the
longest trailing part of its path that exists under the root (``/data0/x/LUPerson-MLLM/part1/a.jpg`` with
``--images .../LUPerson-MLLM`` → ``part1/a.jpg``), else a unique file of that basename anywhere under the
root. Keys that resolve to no image (or to several) become reject rows (stage ``import``, reason
``import:image_not_found`` / ``import:ambiguous_image``, caption kept), as do images that fail to decode
(the decoder's reason) and a second path with the same image content for the same kind and model
(``import:duplicate_image``, the row key must stay unique). A malformed file (not a JSON object of
non-empty strings, or two files for one kind × model) stops the import before anything is written
(:class:`~pedes_core.errors.InputError`, exit 2). The captions are taken as released: validation is
recorded as passed, not re-run. Shards hold ``shard_size`` images (sorted by path); the import resumes
like ``pedes corpus import`` (done shards skipped, a fingerprint of the input files guards against mixing).

Export (:func:`export_luperson_mllm`): one file per (kind, model) of the ``static``/``dynamic`` rows, keyed
by ``image_path`` (relative to the corpus' image root). Only rows whose validation passed are written by
default. Where an image has several captions of one kind × model (several templates or styles), the first
in row-key order is written and the others are counted in ``LupersonExport.dropped``: the format holds one
caption per image and file. Model names are made file-safe (characters outside ``[A-Za-z0-9._+-]`` → ``_``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from caption_gen.corpus.errors import CorpusError
from caption_gen.corpus.rows import caption_row, reject_row
from caption_gen.images.decode import DEFAULT_MAX_PIXELS, ImageRejected, decode_image, hash_file
from caption_gen.images.discovery import ImageRef
from pedes_core.errors import InputError

LUPERSON_FORMAT = "luperson-mllm"
#: file-name prefix → corpus kind (seed 002: T^s static, T^d dynamic instruction)
PREFIX_KIND: dict[str, str] = {"Ts": "static", "Td": "dynamic"}
KIND_PREFIX: dict[str, str] = {v: k for k, v in PREFIX_KIND.items()}
FILE_RE = re.compile(r"^(T[sd])-(.+)\.json$")
IMPORT_STAGE = "import"
NOT_FOUND = "import:image_not_found"
AMBIGUOUS = "import:ambiguous_image"
DUPLICATE = "import:duplicate_image"
DEFAULT_SHARD_SIZE = 1000
LICENSE = "LUPerson images: non-commercial research only; captions: the LUPerson-MLLM authors' terms"
LICENSE_LINK = "https://github.com/DengpanFu/LUPerson"
MAX_REPORTED = 5
_UNSAFE = re.compile(r"[^A-Za-z0-9._+\-]")


def parse_caption_file_name(name: str) -> tuple[str, str]:
    """``"Td-qwen.json"`` → ``("dynamic", "qwen")``; :class:`InputError` for other names."""
    m = FILE_RE.match(name)
    if m is None:
        raise InputError(f"{name}: not a LUPerson-MLLM caption file name (expected Ts-<model>.json or Td-<model>.json)")
    return PREFIX_KIND[m.group(1)], m.group(2)


def caption_file_name(kind: str, model: str) -> str:
    """``("static", "qwen")`` → ``"Ts-qwen.json"`` (model made file-safe)."""
    if kind not in KIND_PREFIX:
        raise ValueError(f"kind {kind!r} has no LUPerson-MLLM file (only {', '.join(KIND_PREFIX)})")
    return f"{KIND_PREFIX[kind]}-{_UNSAFE.sub('_', model)}.json"


def caption_files(path: str | Path) -> list[Path]:
    """The caption files named by ``--annotations``: the file itself, or the ``T{s,d}-*.json`` of a folder."""
    p = Path(path)
    if p.is_file():
        parse_caption_file_name(p.name)
        return [p]
    if p.is_dir():
        found = sorted(q for q in p.iterdir() if q.is_file() and FILE_RE.match(q.name))
        if not found:
            raise InputError(f"{p}: no LUPerson-MLLM caption files (Ts-<model>.json / Td-<model>.json) in this folder")
        return found
    raise InputError(f"{p}: no such caption file or folder")


def read_caption_file(path: Path) -> dict[str, str]:
    """``{image path: caption}`` of one file; :class:`InputError` naming the file and the first bad entries."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object {{image path: caption}}, got a JSON {type(data).__name__}")
    bad = [k for k, v in data.items() if not k.strip() or not isinstance(v, str) or not v.strip()]
    if bad:
        shown = ", ".join(repr(k) for k in bad[:MAX_REPORTED])
        raise InputError(f"{path}: {len(bad)} of {len(data)} entries have an empty key or a caption that is not "
                         f"a non-empty string; first: {shown}")
    return {k: v.strip() for k, v in data.items()}


class _ImageResolver:
    """Caption-file key → path relative to the image root (module docstring), basename index built lazily."""

    def __init__(self, root: Path):
        self.root = root
        self._by_name: dict[str, list[str]] | None = None

    def _index(self) -> dict[str, list[str]]:
        if self._by_name is None:
            index: dict[str, list[str]] = {}
            for folder, _, files in os.walk(self.root):
                rel_dir = Path(folder).relative_to(self.root)
                for f in files:
                    index.setdefault(f, []).append((rel_dir / f).as_posix())
            self._by_name = index
        return self._by_name

    def resolve(self, key: str) -> tuple[str | None, str | None]:
        """(relative path, None) or (None, reject reason)."""
        parts = [p for p in PurePosixPath(key.replace("\\", "/")).parts if p not in ("/", ".", "")]
        if ".." in parts:  # only what follows the last ".." can lie under the root
            parts = parts[max(i for i, p in enumerate(parts) if p == "..") + 1:]
        for start in range(len(parts)):
            rel = "/".join(parts[start:])
            if rel and (self.root / rel).is_file():
                return rel, None
        hits = self._index().get(parts[-1], []) if parts else []
        if len(hits) == 1:
            return hits[0], None
        return None, AMBIGUOUS if hits else NOT_FOUND


@dataclass
class LupersonImport:
    """Outcome of one import run."""

    out: Path
    manifest: dict[str, Any]
    files: list[str]
    shards_written: int
    shards_skipped: int
    rows: int
    rejects: int


@dataclass
class _Image:
    rel: str
    captions: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, model, caption)


def _load_inputs(annotations: str | Path, images: Path) -> tuple[list[Path], list[_Image], list[dict], dict[str, str]]:
    files = caption_files(annotations)
    owners: dict[tuple[str, str], Path] = {}
    per_image: dict[str, _Image] = {}
    unresolved: list[dict] = []
    resolver = _ImageResolver(images)
    shas: dict[str, str] = {}
    for path in files:
        kind, model = parse_caption_file_name(path.name)
        if (kind, model) in owners:
            raise InputError(f"{path}: a second caption file for kind {kind} × model {model!r} "
                             f"(also {owners[kind, model]}); give one folder or file per kind × model")
        owners[kind, model] = path
        shas[path.name] = hash_file(str(path))
        for key, caption in read_caption_file(path).items():
            rel, reason = resolver.resolve(key)
            if rel is None:
                unresolved.append(reject_row(image_path=key, stage=IMPORT_STAGE, kind=kind, model=model, reason=reason,
                                             reasons=[reason], caption=caption,
                                             detail=f"{path.name}: key {key!r} under {images}"))
                continue
            per_image.setdefault(rel, _Image(rel)).captions.append((kind, model, caption))
    return files, [per_image[k] for k in sorted(per_image)], unresolved, shas


def _decode(root: Path, rel: str, max_pixels: int):
    try:
        return decode_image(ImageRef(path=rel, uri=str(root / rel)), max_pixels=max_pixels)
    except ImageRejected as rej:
        return rej


def _shard_rows(chunk: Sequence[_Image], decoded: Sequence[Any], seen: set[tuple[str, str, str]]):
    rows: list[dict] = []
    rejects: list[dict] = []
    for img, d in zip(chunk, decoded, strict=True):
        for kind, model, caption in img.captions:
            if isinstance(d, ImageRejected):
                sha = d.sha256
                rejects.append(reject_row(image_id=sha[:20] if sha else None, image_path=img.rel, image_sha256=sha,
                                          stage=IMPORT_STAGE, kind=kind, model=model, reason=d.reason,
                                          reasons=[d.reason], detail=d.detail, caption=caption))
                continue
            key = (d.image_id, kind, model)
            if key in seen:
                rejects.append(reject_row(image_id=d.image_id, image_path=img.rel, image_sha256=d.sha256,
                                          stage=IMPORT_STAGE, kind=kind, model=model, reason=DUPLICATE,
                                          reasons=[DUPLICATE], caption=caption,
                                          detail="same image content as an earlier path, same kind and model"))
                continue
            seen.add(key)
            rows.append(caption_row(image_id=d.image_id, image_path=img.rel, image_sha256=d.sha256, width=d.width,
                                    height=d.height, kind=kind, model=model, caption=caption))
    return rows, rejects


def import_luperson_mllm(
    annotations: str | Path,
    images: str | Path,
    out: str | Path,
    *,
    shard_size: int = DEFAULT_SHARD_SIZE,
    name: str | None = None,
    workers: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    on_shard: Callable[[int, dict[str, Any], bool], None] | None = None,
) -> LupersonImport:
    """Import LUPerson-MLLM caption files (a file or a folder of ``T{s,d}-<model>.json``) as a corpus at ``out``."""
    import pyarrow.parquet as pq

    from caption_gen.corpus.writer import CorpusWriter

    if shard_size < 1 or workers < 1:
        raise ValueError(f"shard_size and workers must be >= 1, got {shard_size}, {workers}")
    image_root = Path(images).expanduser().absolute()
    if not image_root.is_dir():
        raise InputError(f"{image_root}: image directory not found")
    files, entries, unresolved, shas = _load_inputs(annotations, image_root)
    if not entries and not unresolved:
        raise InputError(f"{annotations}: the caption files hold no entries")
    fingerprint = {"format": LUPERSON_FORMAT, "files_sha256": shas, "shard_size": shard_size, "images": len(entries)}
    root = Path(str(out)).expanduser().absolute()
    n_shards = max(1, (len(entries) + shard_size - 1) // shard_size)
    seen: set[tuple[str, str, str]] = set()
    written = skipped = 0
    with CorpusWriter(root, image_root=str(image_root)) as writer:
        done = writer.done_shards()
        for shard in sorted(done):
            previous = (writer.shard_stats(shard).get("extra") or {}).get("import")
            if previous != fingerprint or shard >= n_shards:
                raise CorpusError(f"{root}: shard {shard} was written by a different import; "
                                  "use a new --out or remove the corpus")
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for shard in range(n_shards):
                chunk = entries[shard * shard_size:(shard + 1) * shard_size]
                if shard in done:
                    stats = writer.shard_stats(shard)
                    if stats.get("captions_file"):
                        t = pq.read_table(root / stats["captions_file"], columns=["image_id", "kind", "model"])
                        seen.update(zip(*(t.column(c).to_pylist() for c in ("image_id", "kind", "model")), strict=True))
                    skipped += 1
                    if on_shard is not None:
                        on_shard(shard, stats, True)
                    continue
                decoded = list(pool.map(lambda e: _decode(image_root, e.rel, max_pixels), chunk))
                rows, rejects = _shard_rows(chunk, decoded, seen)
                if shard == 0:
                    rejects = unresolved + rejects
                stats = writer.write_shard(shard, rows, rejects, extra_stats={"import": fingerprint})
                written += 1
                if on_shard is not None:
                    on_shard(shard, stats, False)
        captions = sum(len(e.captions) for e in entries) + len(unresolved)
        manifest = writer.finalize(
            name=name or "luperson-mllm",
            config={"import": {"format": LUPERSON_FORMAT, "annotations": [f.name for f in files],
                               "shard_size": shard_size}},
            description=(f"LUPerson-MLLM captions ({', '.join(f.name for f in files)}) imported by "
                         f"`pedes corpus import --format {LUPERSON_FORMAT}`: {len(entries)} images, {captions} captions."),
            sources=[{"name": "LUPerson-MLLM captions", "license": LICENSE, "license_link": LICENSE_LINK,
                      "format": LUPERSON_FORMAT, "files": shas, "captions": captions}],
        )
    totals = manifest.get("totals", {})
    return LupersonImport(out=root, manifest=manifest, files=[f.name for f in files], shards_written=written,
                          shards_skipped=skipped, rows=int(totals.get("rows", 0)), rejects=int(totals.get("rejects", 0)))


@dataclass
class LupersonExport:
    """Outcome of an export: file name → captions written, rows not written and why."""

    out: Path
    files: dict[str, int]
    dropped: int = 0  # further captions of one image × kind × model (templates/styles)
    failed_validation: int = 0
    other_kinds: dict[str, int] = field(default_factory=dict)


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    tmp.replace(path)


def export_luperson_mllm(corpus: str | Path, out: str | Path, *, passed_only: bool = True) -> LupersonExport:
    """Write ``Ts-<model>.json`` / ``Td-<model>.json`` for the static/dynamic captions of ``corpus`` (module docstring)."""
    from caption_gen.corpus.reader import Corpus

    c = Corpus.open(corpus)
    table = c.captions(columns=["image_path", "kind", "model", "template_id", "style_id", "caption", "validation"])
    rows = table.to_pylist()
    result = LupersonExport(out=Path(out), files={})
    groups: dict[str, dict[str, str]] = {}
    owner: dict[str, str] = {}
    rows.sort(key=lambda r: (r["image_path"], r["kind"], r["model"], r["template_id"] or "", r["style_id"] or ""))
    for r in rows:
        if r["kind"] not in KIND_PREFIX:
            result.other_kinds[r["kind"]] = result.other_kinds.get(r["kind"], 0) + 1
            continue
        if passed_only and not r["validation"]["passed"]:
            result.failed_validation += 1
            continue
        fname = caption_file_name(r["kind"], r["model"])
        if owner.setdefault(fname, r["model"]) != r["model"]:
            raise CorpusError(f"models {owner[fname]!r} and {r['model']!r} both map to the file name {fname}")
        captions = groups.setdefault(fname, {})
        if r["image_path"] in captions:
            result.dropped += 1
            continue
        captions[r["image_path"]] = r["caption"]
    if not groups:
        raise CorpusError(f"{c.root}: no static/dynamic captions to export "
                          f"(kinds present: {', '.join(sorted(result.other_kinds)) or 'none'})")
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    for fname, captions in sorted(groups.items()):
        _write_json_atomic(target / fname, captions)
        result.files[fname] = len(captions)
    return result

