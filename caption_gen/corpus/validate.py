"""``pedes corpus validate``: every check a consumer of a corpus relies on (DESIGN §2).

Checks, each problem reported (never stops at the first):

1. ``corpus.json`` present, parseable, our format and schema version;
2. every shard / rejects file of the manifest exists, its sha256 and row count match the manifest,
   its Parquet schema equals ``CAPTION_SCHEMA`` / ``REJECT_SCHEMA`` (names, types, nullability);
3. done markers agree with the manifest (same shards, same files and hashes) and totals add up;
4. orphans: Parquet files no marker/manifest names, temp files of killed writers, stray files;
5. the row key is unique across the whole corpus;
6. every ``image_path`` exists under the image root — the ``images`` argument, else the manifest's
   ``image_root`` (relative → to the corpus directory). When neither is available the check is
   skipped with a note (a corpus copied without its images is not invalid); an explicitly given
   ``images`` directory that does not exist is a problem. ``hash_images`` also re-hashes each image;
7. coverage, when ``images`` is given and the manifest records the run ``fingerprint`` (kinds, models):
   every image found there has, for every configured kind × model, a caption row or a reject (an
   image-level reject — decode, duplicate, not a file — covers all of its jobs). Images without them
   (a run that stopped early, a resume that lost work, images added since) are a problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from caption_gen.corpus import manifest as mf
from caption_gen.corpus.errors import NotACorpusError
from caption_gen.corpus.schema import CAPTION_SCHEMA, REJECT_SCHEMA, ROW_KEY, SCHEMA_VERSION
from caption_gen.corpus.writer import duplicate_keys

_MAX_LISTED = 20
_ALLOWED_ROOT_FILES = {mf.MANIFEST_NAME, mf.CARD_NAME, ".pedes-writer.lock", "pedes.log"}  # pedes.log: docs/logging.md
_ALLOWED_ROOT_DIRS = {mf.SHARDS_DIR, mf.REJECTS_DIR, mf.STYLES_DIR}


@dataclass
class Problem:
    check: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.path}: {self.message}"


@dataclass
class ValidationReport:
    root: str
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, check: str, path: str | Path, message: str) -> None:
        self.problems.append(Problem(check, str(path), message))

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "valid": self.ok,
            "problems": [p.__dict__ for p in self.problems],
            "notes": self.notes,
            "checked": self.checked,
        }


def _schema_diff(actual: pa.Schema, expected: pa.Schema) -> str | None:
    if actual.equals(expected, check_metadata=False):
        return None
    diffs = []
    for f in expected:
        if f.name not in actual.names:
            diffs.append(f"missing column {f.name!r}")
            continue
        a = actual.field(f.name)
        if not a.type.equals(f.type):
            diffs.append(f"column {f.name!r} is {a.type}, expected {f.type}")
        elif a.nullable != f.nullable:
            diffs.append(f"column {f.name!r} nullable={a.nullable}, expected {f.nullable}")
    diffs += [f"unexpected column {n!r}" for n in actual.names if n not in expected.names]
    if not diffs:
        diffs.append(f"column order differs: {actual.names}")
    return "; ".join(diffs)


def _check_file(report: ValidationReport, root: Path, entry: dict, schema: pa.Schema, what: str) -> bool:
    rel = entry.get("path")
    path = root / str(rel)
    if not rel or not path.is_file():
        report.add("files", rel or "?", f"{what} file listed in {mf.MANIFEST_NAME} is missing")
        return False
    digest = mf.sha256_file(path)
    if digest != entry.get("sha256"):
        report.add("hash", rel, f"sha256 {digest[:16]}… differs from the manifest's {str(entry.get('sha256'))[:16]}…")
    try:
        meta = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        report.add("schema", rel, f"not a readable Parquet file ({exc})")
        return False
    diff = _schema_diff(meta.schema_arrow, schema)
    if diff:
        report.add("schema", rel, diff)
    if meta.metadata.num_rows != entry.get("rows"):
        report.add("rows", rel, f"{meta.metadata.num_rows} rows, manifest says {entry.get('rows')}")
    return diff is None


def _check_markers(report: ValidationReport, root: Path, manifest: dict, markers: dict[int, dict]) -> None:
    listed = {e["shard"]: e for e in manifest.get("shards", []) if isinstance(e, dict) and isinstance(e.get("shard"), int)}
    listed_rej = {
        e["shard"]: e for e in manifest.get("rejects", []) if isinstance(e, dict) and isinstance(e.get("shard"), int)
    }
    done = set(manifest.get("done_shards", sorted(set(listed) | set(listed_rej))))
    for shard in sorted(set(markers) - done):
        report.add("markers", mf.marker_name(shard), "done marker of a shard the manifest does not list (finalize again)")
    for shard in sorted(done - set(markers)):
        report.add("markers", mf.marker_name(shard), "shard listed in the manifest has no done marker")
    for shard, stats in sorted(markers.items()):
        if shard not in done:
            continue
        for key_file, key_sha, key_rows, table in (
            ("captions_file", "captions_sha256", "rows", listed),
            ("rejects_file", "rejects_sha256", "rejects", listed_rej),
        ):
            entry = table.get(shard)
            if (stats.get(key_file) is None) != (entry is None):
                report.add("markers", mf.marker_name(shard), f"{key_file} disagrees with the manifest")
            elif entry is not None and (
                stats.get(key_file) != entry.get("path")
                or stats.get(key_sha) != entry.get("sha256")
                or stats.get(key_rows) != entry.get("rows")
            ):
                report.add("markers", mf.marker_name(shard), f"{key_file} path/sha256/rows differ from the manifest")
    totals = manifest.get("totals", {})
    rows = sum(int(e.get("rows", 0)) for e in listed.values())
    if totals.get("rows") != rows:
        report.add("totals", mf.MANIFEST_NAME, f"totals.rows = {totals.get('rows')} but the shards hold {rows}")
    rej = sum(int(e.get("rows", 0)) for e in listed_rej.values())
    if totals.get("rejects") != rej:
        report.add("totals", mf.MANIFEST_NAME, f"totals.rejects = {totals.get('rejects')} but the rejects files hold {rej}")


def _check_orphans(report: ValidationReport, root: Path, manifest: dict) -> None:
    known = {e.get("path") for e in manifest.get("shards", [])} | {e.get("path") for e in manifest.get("rejects", [])}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        top = rel.split("/", 1)[0]
        if p.is_dir():
            continue
        if mf.is_temp_name(p.name):
            report.add("orphans", rel, "temporary file left by an interrupted writer")
        elif top in (mf.SHARDS_DIR, mf.REJECTS_DIR):
            if rel.startswith(mf.DONE_DIR + "/"):
                if not (p.suffix == ".json" and p.stem.isdigit()):
                    report.add("orphans", rel, "unexpected file in the done-marker folder")
            elif rel not in known:
                report.add("orphans", rel, "file not listed in the manifest (partial shard of a killed run?)")
        elif "/" not in rel and rel not in _ALLOWED_ROOT_FILES:
            report.add("orphans", rel, "unexpected file in the corpus root")
        elif "/" in rel and top not in _ALLOWED_ROOT_DIRS:
            report.add("orphans", rel, "unexpected file in the corpus")


def _resolve_image_root(root: Path, manifest: dict, images: str | Path | None, report: ValidationReport):
    if images is not None:
        text = str(images)
        if "://" not in text and not Path(text).is_dir():
            report.add("images", text, "image directory given with --images does not exist")
            return None
        return text
    recorded = manifest.get("image_root")
    if not recorded:
        report.notes.append("image check skipped: no image root recorded (give --images DIR)")
        return None
    if "://" in recorded:
        return recorded
    path = Path(recorded)
    path = path if path.is_absolute() else root / path
    if not path.is_dir():
        report.notes.append(f"image check skipped: image root {recorded} is not available here (give --images DIR)")
        return None
    return str(path)


def _check_images(report: ValidationReport, image_root: str, table: pa.Table, hash_images: bool) -> None:
    import fsspec

    fs, base = fsspec.core.url_to_fs(image_root)
    pairs = sorted(set(zip(table.column("image_path").to_pylist(), table.column("image_sha256").to_pylist(), strict=True)))
    missing = mismatched = 0
    for rel, sha in pairs:
        full = rel if "://" in rel or rel.startswith("/") else f"{base.rstrip('/')}/{rel}"
        if not fs.isfile(full):
            missing += 1
            if missing <= _MAX_LISTED:
                report.add("images", rel, f"image missing under {image_root}")
            continue
        if hash_images:
            from caption_gen.images.decode import hash_file

            if hash_file(fs.unstrip_protocol(full) if "://" in image_root else full) != sha:
                mismatched += 1
                if mismatched <= _MAX_LISTED:
                    report.add("images", rel, "image bytes do not match image_sha256")
    if missing > _MAX_LISTED:
        report.add("images", image_root, f"{missing} images missing in all ({_MAX_LISTED} listed)")
    if mismatched > _MAX_LISTED:
        report.add("images", image_root, f"{mismatched} images changed in all ({_MAX_LISTED} listed)")
    report.checked["images"] = len(pairs)


def validate_corpus(
    root: str | Path, *, images: str | Path | None = None, hash_images: bool = False
) -> ValidationReport:
    """Run every check on the corpus at ``root``; :class:`NotACorpusError` when it is not one."""
    path = Path(str(root).removeprefix("file://")).expanduser().absolute()
    if not path.is_dir() or not ((path / mf.MANIFEST_NAME).is_file() or (path / mf.DONE_DIR).is_dir()):
        raise NotACorpusError(f"{root}: not a corpus (no {mf.MANIFEST_NAME} and no {mf.DONE_DIR}/)")
    report = ValidationReport(root=str(path))
    manifest_path = path / mf.MANIFEST_NAME
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        report.add("manifest", mf.MANIFEST_NAME, "missing: the corpus was never finalized (CorpusWriter.finalize)")
        manifest = {}
    except (OSError, ValueError) as exc:
        report.add("manifest", mf.MANIFEST_NAME, f"not valid JSON ({exc})")
        manifest = {}
    if not isinstance(manifest, dict):
        report.add("manifest", mf.MANIFEST_NAME, "does not hold a JSON object")
        manifest = {}
    if manifest:
        if manifest.get("format") != mf.CORPUS_FORMAT:
            report.add("manifest", mf.MANIFEST_NAME, f"format is {manifest.get('format')!r}, expected {mf.CORPUS_FORMAT!r}")
        version = str(manifest.get("schema_version", ""))
        if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            report.add("manifest", mf.MANIFEST_NAME, f"schema version {version!r} is not compatible with {SCHEMA_VERSION}")
    try:
        markers = mf.read_markers(path)
    except ValueError as exc:
        report.add("markers", mf.DONE_DIR, str(exc))
        markers = {}

    for key in ("shards", "rejects"):
        if not isinstance(manifest.get(key, []), list) or not all(isinstance(e, dict) for e in manifest.get(key, [])):
            report.add("manifest", mf.MANIFEST_NAME, f"{key!r} must be a list of objects")
            manifest[key] = []
    good_shards = [
        str(path / e["path"])
        for e in manifest.get("shards", [])
        if _check_file(report, path, e, CAPTION_SCHEMA, "shard")
    ]
    for e in manifest.get("rejects", []):
        _check_file(report, path, e, REJECT_SCHEMA, "rejects")
    report.checked["shards"] = len(manifest.get("shards", []))
    report.checked["rejects_files"] = len(manifest.get("rejects", []))
    if manifest:
        _check_markers(report, path, manifest, markers)
    _check_orphans(report, path, manifest)

    if good_shards:
        table = ds.dataset(good_shards, schema=CAPTION_SCHEMA, format="parquet").to_table(
            columns=list(dict.fromkeys([*ROW_KEY, "image_path", "image_sha256"]))
        )
        report.checked["rows"] = table.num_rows
        n_dup, examples = duplicate_keys(table, limit=_MAX_LISTED)
        for ex in examples:
            report.add("row_key", "shards", f"row key occurs {ex['count_all']} times: {({k: ex[k] for k in ROW_KEY})}")
        if n_dup > len(examples):
            report.add("row_key", "shards", f"{n_dup} duplicated row keys in all ({len(examples)} listed)")
        image_root = _resolve_image_root(path, manifest, images, report)
        if image_root is not None:
            _check_images(report, image_root, table, hash_images)
    elif images is not None:
        _resolve_image_root(path, manifest, images, report)
    if images is not None and isinstance(manifest.get("fingerprint"), dict):
        _check_coverage(report, path, manifest, images, good_shards)
    elif images is not None and manifest:
        report.notes.append("coverage check skipped: the manifest records no run fingerprint (kinds × models), "
                            "e.g. an imported corpus")
    return report


def _check_coverage(report: ValidationReport, root: Path, manifest: dict, images: str | Path,
                    good_shards: list[str]) -> None:
    from caption_gen.images.discovery import discover_images
    from pedes_core.errors import InputError

    fp = manifest["fingerprint"]
    jobs = [(k, m) for m in fp.get("models") or [] for k in fp.get("kinds") or []]
    if not jobs:
        return
    try:
        found = [r.path for r in discover_images(images)]
    except InputError as exc:
        report.add("coverage", str(images), str(exc))
        return
    have: set[tuple[str, str, str]] = set()
    whole: set[str] = set()
    if good_shards:
        caps = ds.dataset(good_shards, schema=CAPTION_SCHEMA, format="parquet").to_table(
            columns=["image_path", "kind", "model"])
        have.update(zip(caps.column("image_path").to_pylist(), caps.column("kind").to_pylist(),
                        caps.column("model").to_pylist(), strict=True))
    rej_files = [str(root / e["path"]) for e in manifest.get("rejects", []) if (root / str(e.get("path"))).is_file()]
    if rej_files:
        try:
            rej = ds.dataset(rej_files, schema=REJECT_SCHEMA, format="parquet").to_table(
                columns=["image_path", "kind", "model"])
        except (OSError, pa.ArrowException) as exc:
            report.add("coverage", "rejects", f"rejects cannot be read ({exc})")
            return
        for p, k, m in zip(rej.column("image_path").to_pylist(), rej.column("kind").to_pylist(),
                           rej.column("model").to_pylist(), strict=True):
            if k is None or m is None:
                whole.add(p)
            else:
                have.add((p, k, m))
    missing = [(p, k, m) for p in found if p not in whole for k, m in jobs if (p, k, m) not in have]
    report.checked["coverage_images"] = len(found)
    if missing:
        images_missing = sorted({p for p, _, _ in missing})
        examples = ", ".join(f"{p} ({k}|{m})" for p, k, m in missing[:5])
        report.add("coverage", str(images),
                   f"{len(images_missing)} image(s) found there lack a caption or reject for "
                   f"{len(missing)} configured kind × model job(s), e.g. {examples} (rerun the captioning)")
