"""Corpus layout, done markers and the ``corpus.json`` manifest (DESIGN.md §2).

Layout helpers name every file of a corpus; :func:`write_json_atomic` / :func:`write_bytes_atomic`
write to a temporary name (``.<name>.tmp-<pid>``, hidden so no reader picks it up) and rename, so a
reader or a killed writer never sees half a file. A shard is complete iff ``shards/_done/NNNNN.json``
exists; the manifest is built from those markers by :func:`build_manifest`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from caption_gen.corpus.errors import CorpusWriteError, CorruptCorpusFileError
from caption_gen.corpus.schema import ROW_KEY, SCHEMA_VERSION

MANIFEST_NAME = "corpus.json"
CARD_NAME = "README.md"
SHARDS_DIR = "shards"
DONE_DIR = "shards/_done"
REJECTS_DIR = "rejects"
STYLES_DIR = "styles"
CORPUS_FORMAT = "pedes-corpus"
TEMP_MARKER = ".tmp-"
_HASH_CHUNK = 1 << 20
_GIT_TIMEOUT_S = 5


def _revision(revision: int) -> str:
    return f".r{revision}" if revision else ""


def captions_name(shard: int, revision: int = 0) -> str:
    """``shards/captions-NNNNN.parquet``; a redone shard's files carry ``.rK`` (never the old file's name,
    so the done marker stays the single commit point)."""
    return f"{SHARDS_DIR}/captions-{shard:05d}{_revision(revision)}.parquet"


def rejects_name(shard: int, revision: int = 0) -> str:
    return f"{REJECTS_DIR}/rejects-{shard:05d}{_revision(revision)}.parquet"


def marker_name(shard: int) -> str:
    return f"{DONE_DIR}/{shard:05d}.json"


def temp_path(final: Path) -> Path:
    """Hidden temporary sibling of ``final`` (ignored by pyarrow.dataset, DuckDB globs and ``datasets``)."""
    return final.with_name(f".{final.name}{TEMP_MARKER}{os.getpid()}")


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and TEMP_MARKER in name


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_failed(path: Path, exc: OSError) -> CorpusWriteError:
    """The one-line error of a failed write (the temporary file is already removed)."""
    import errno

    name = errno.errorcode.get(exc.errno or 0, "")
    why = exc.strerror or str(exc)
    hint = "; the disk is full: free space and rerun (done shards are kept)" if exc.errno == errno.ENOSPC else ""
    return CorpusWriteError(f"cannot write {path}: {why}{f' ({name})' if name else ''}{hint}; nothing partial was left")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary sibling and rename; on any OSError (e.g. ENOSPC) the temporary file
    is removed and :class:`CorpusWriteError` names ``path``."""
    tmp = temp_path(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_failed(path, exc) from None


def write_json_atomic(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode())


def utc_now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def git_describe() -> str | None:
    """``git describe --always --dirty --tags`` of the source checkout, or None outside a git tree."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def code_version() -> dict[str, str | None]:
    import caption_gen

    return {"caption_gen": caption_gen.__version__, "git": git_describe()}


def read_markers(root: Path) -> dict[int, dict[str, Any]]:
    """All done markers of a corpus: shard index → stats. Unparseable markers raise CorruptCorpusFileError."""
    done = root / DONE_DIR
    out: dict[int, dict[str, Any]] = {}
    if not done.is_dir():
        return out
    for p in sorted(done.iterdir()):
        if is_temp_name(p.name) or p.suffix != ".json" or not p.stem.isdigit():
            continue
        hint = f"redo the shard with: pedes corpus redo-shard {root} {int(p.stem)}"
        try:
            out[int(p.stem)] = json.loads(p.read_text())
        except ValueError as exc:
            raise CorruptCorpusFileError(f"done marker {p} of shard {int(p.stem)} is not valid JSON ({exc}); {hint}") from None
        if not isinstance(out[int(p.stem)], dict):
            raise CorruptCorpusFileError(f"done marker {p} of shard {int(p.stem)} does not hold a JSON object; {hint}")
    return out


def _merge_counts(target: dict[str, int], add: dict[str, int]) -> None:
    for k, v in add.items():
        target[k] = target.get(k, 0) + int(v)


def totals_from_markers(markers: dict[int, dict[str, Any]]) -> dict[str, Any]:
    totals: dict[str, Any] = {
        "shards": len(markers),
        "rows": 0,
        "rejects": 0,
        "by_kind": {},
        "by_model": {},
        "validation": {"passed": 0, "failed": 0},
        "rejects_by_reason": {},
        "rejects_by_stage": {},
    }
    for stats in markers.values():
        totals["rows"] += int(stats.get("rows", 0))
        totals["rejects"] += int(stats.get("rejects", 0))
        _merge_counts(totals["by_kind"], stats.get("by_kind", {}))
        _merge_counts(totals["by_model"], stats.get("by_model", {}))
        _merge_counts(totals["validation"], stats.get("validation", {}))
        _merge_counts(totals["rejects_by_reason"], stats.get("rejects_by_reason", {}))
        _merge_counts(totals["rejects_by_stage"], stats.get("rejects_by_stage", {}))
    for key in ("by_kind", "by_model", "rejects_by_reason", "rejects_by_stage"):
        totals[key] = dict(sorted(totals[key].items()))
    return totals


def build_manifest(
    markers: dict[int, dict[str, Any]],
    *,
    name: str,
    image_root: str | None,
    config: dict | None = None,
    models: list[str] | None = None,
    banks: dict[str, str] | None = None,
    description: str | None = None,
    sources: list[dict] | None = None,
    images: int | None = None,
    previous: dict | None = None,
    fingerprint: dict | None = None,
) -> dict[str, Any]:
    """The ``corpus.json`` content. ``previous`` (an older manifest) keeps the original ``created_at``;
    ``fingerprint``: the settings that decide the rows (kinds, models, seed, banks, shard size), checked
    on resume and by ``pedes corpus validate --images`` (kept from ``previous`` when not given)."""
    shards = [
        {"shard": i, "path": s["captions_file"], "rows": s["rows"], "sha256": s["captions_sha256"]}
        for i, s in sorted(markers.items())
        if s.get("captions_file")
    ]
    rejects = [
        {"shard": i, "path": s["rejects_file"], "rows": s["rejects"], "sha256": s["rejects_sha256"]}
        for i, s in sorted(markers.items())
        if s.get("rejects_file")
    ]
    totals = totals_from_markers(markers)
    if images is not None:
        totals["images"] = images
    now = utc_now_iso()
    return {
        "format": CORPUS_FORMAT,
        "name": name,
        "schema_version": SCHEMA_VERSION,
        "row_key": list(ROW_KEY),
        "description": description,
        "created_at": (previous or {}).get("created_at", now),
        "updated_at": now,
        "code_version": code_version(),
        "image_root": image_root,
        "config": config,
        "models": sorted(models) if models is not None else sorted(totals["by_model"]),
        "banks": dict(sorted((banks or {}).items())),
        "sources": sources or [],
        "fingerprint": fingerprint if fingerprint is not None else (previous or {}).get("fingerprint"),
        "shards": shards,
        "rejects": rejects,
        "done_shards": sorted(markers),
        "totals": totals,
    }


def read_manifest(root: Path) -> dict[str, Any] | None:
    path = root / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except ValueError as exc:
        raise CorruptCorpusFileError(f"{path} is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise CorruptCorpusFileError(f"{path} does not hold a JSON object")
    return manifest
