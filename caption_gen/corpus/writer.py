"""Shard writer of the Parquet corpus (DESIGN.md §2).

Crash safety: each shard's files are written under a hidden temporary name and renamed
(``os.replace``, atomic on POSIX), the captions file first, then the rejects file, and the done
marker ``shards/_done/NNNNN.json`` (per-shard stats with the sha256 of both files) **last**. A shard
without a marker does not exist for readers of this package and is rewritten by the next run; a
killed run therefore loses at most the shards in flight. Leftover temp files are removed when a
writer opens the corpus (it holds the exclusive lock, so no live writer owns them), and orphan shard
files (renamed but without a marker) when :meth:`CorpusWriter.finalize` runs. Empty files are not
written: a shard with no caption rows (or no rejects) has ``captions_file`` (``rejects_file``) = null.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from caption_gen.corpus import manifest as mf
from caption_gen.corpus.card import render_card
from caption_gen.corpus.errors import CorpusError, ShardSchemaError
from caption_gen.corpus.lock import CorpusLock
from caption_gen.corpus.schema import (
    CAPTION_SCHEMA,
    REJECT_SCHEMA,
    RETRYABLE_REASONS,
    ROW_KEY,
    SCHEMA_VERSION,
)
from pedes_core.logs import announce_run_dir

PARQUET_COMPRESSION = "zstd"
_MAX_REPORTED = 5


def _local_root(root: str | Path) -> Path:
    text = str(root)
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif "://" in text:
        raise CorpusError(f"corpus {root}: only local directories (or file:// URLs) can be written")
    return Path(text).expanduser().absolute()


def _rows_to_table(rows: Iterable[dict] | pa.Table, schema: pa.Schema, what: str) -> pa.Table:
    """Conform rows to ``schema`` exactly (column order, types), naming the column on any problem."""
    if isinstance(rows, pa.Table):
        missing = [f.name for f in schema if f.name not in rows.column_names and not f.nullable]
        if missing:
            raise ShardSchemaError(f"{what}: required column(s) missing: {', '.join(missing)}")
        unknown = [n for n in rows.column_names if n not in schema.names]
        if unknown:
            raise ShardSchemaError(f"{what}: unknown column(s) {', '.join(unknown)}")
        arrays = []
        for f in schema:
            if f.name not in rows.column_names:
                arrays.append(pa.nulls(rows.num_rows, f.type))
                continue
            col = rows.column(f.name)
            if not col.type.equals(f.type):
                try:
                    col = col.cast(f.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                    raise ShardSchemaError(
                        f"{what}: column {f.name!r} has type {col.type}, expected {f.type} ({exc})"
                    ) from exc
            arrays.append(col)
        table = pa.Table.from_arrays(arrays, schema=schema)
    else:
        rows = list(rows)
        names = set(schema.names)
        seen: set[str] = set()
        for r in rows:
            seen.update(r.keys())
        unknown = sorted(seen - names)
        if unknown:
            raise ShardSchemaError(f"{what}: unknown column(s) {', '.join(unknown)}")
        arrays = []
        for f in schema:
            values = [r.get(f.name) for r in rows]
            try:
                arrays.append(pa.array(values, type=f.type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
                raise ShardSchemaError(f"{what}: column {f.name!r} (type {f.type}): {exc}") from exc
        table = pa.Table.from_arrays(arrays, schema=schema)
    _check_required(table, schema, what)
    return table


def _check_required(table: pa.Table, schema: pa.Schema, what: str) -> None:
    for f in schema:
        col = table.column(f.name)
        if not f.nullable and col.null_count:
            first = pc.index(pc.is_null(col), True).as_py()
            raise ShardSchemaError(f"{what}: required column {f.name!r} has {col.null_count} null(s) (row {first} first)")
        if pa.types.is_struct(f.type) and col.null_count < len(col):
            for i, child in enumerate(f.type):
                if child.nullable:
                    continue
                values = pc.struct_field(col, [i])
                missing = pc.sum(pc.and_(pc.is_valid(col), pc.is_null(values))).as_py() or 0
                if missing:
                    raise ShardSchemaError(f"{what}: required field {f.name}.{child.name} has {missing} null(s)")


def duplicate_keys(table: pa.Table, limit: int = _MAX_REPORTED) -> tuple[int, list[dict]]:
    """Row-key groups occurring more than once: (number of such keys, up to ``limit`` examples)."""
    if table.num_rows == 0:
        return 0, []
    counts = table.select(list(ROW_KEY)).group_by(list(ROW_KEY), use_threads=False).aggregate([([], "count_all")])
    dup = counts.filter(pc.greater(counts["count_all"], 1))
    return dup.num_rows, dup.slice(0, limit).to_pylist()


def _value_counts(col: pa.ChunkedArray) -> dict[str, int]:
    if len(col) == 0:
        return {}
    vc = pc.value_counts(col)
    return dict(sorted((str(v), int(c)) for v, c in zip(vc.field(0).to_pylist(), vc.field(1).to_pylist(), strict=True)))


def _by_kind_model(captions: pa.Table, rejects: pa.Table) -> dict[str, dict[str, int]]:
    """``"kind|model"`` → rows, accepted (validation passed) and rejects (image-level rejects not counted)."""
    out: dict[str, dict[str, int]] = {}
    if captions.num_rows:
        passed = pc.struct_field(captions.column("validation"), ["passed"]).to_pylist()
        for kind, model, ok in zip(captions.column("kind").to_pylist(), captions.column("model").to_pylist(),
                                   passed, strict=True):
            e = out.setdefault(f"{kind}|{model}", {"rows": 0, "accepted": 0, "rejects": 0})
            e["rows"] += 1
            e["accepted"] += int(bool(ok))
    if rejects.num_rows:
        for kind, model in zip(rejects.column("kind").to_pylist(), rejects.column("model").to_pylist(), strict=True):
            if kind is not None and model is not None:
                out.setdefault(f"{kind}|{model}", {"rows": 0, "accepted": 0, "rejects": 0})["rejects"] += 1
    return dict(sorted(out.items()))


def shard_stats(captions: pa.Table, rejects: pa.Table) -> dict[str, Any]:
    passed = pc.struct_field(captions.column("validation"), ["passed"]) if captions.num_rows else None
    n_passed = int(pc.sum(passed).as_py() or 0) if passed is not None else 0
    return {
        "by_kind_model": _by_kind_model(captions, rejects),
        "rows": captions.num_rows,
        "rejects": rejects.num_rows,
        "images": int(pc.count_distinct(captions.column("image_id")).as_py()) if captions.num_rows else 0,
        "by_kind": _value_counts(captions.column("kind")),
        "by_model": _value_counts(captions.column("model")),
        "validation": {"passed": n_passed, "failed": captions.num_rows - n_passed},
        "accepted": n_passed,
        "rejected": rejects.num_rows,
        "rejects_by_reason": _value_counts(rejects.column("reason")),
        "rejects_by_stage": _value_counts(rejects.column("stage")),
    }


class CorpusWriter:
    """Writes numbered shards into a corpus directory; one writer per directory at a time (lock)."""

    def __init__(self, root: str | Path, *, image_root: str | None = None, lock: bool = True):
        self.root = _local_root(root)
        self.image_root = str(image_root) if image_root is not None else None
        for sub in (mf.SHARDS_DIR, mf.DONE_DIR, mf.REJECTS_DIR):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._lock = CorpusLock(self.root) if lock else None
        announce_run_dir(self.root)  # the CLI's log file goes into the corpus (docs/logging.md)
        if self._lock is not None:
            self._lock.acquire()
            self.remove_temp_files()

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Release the writer lock (the corpus stays as written)."""
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> CorpusWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- shards ------------------------------------------------------------------------------
    def _marker(self, shard: int) -> Path:
        return self.root / mf.marker_name(shard)

    def is_done(self, shard: int) -> bool:
        return self._marker(shard).is_file()

    def done_shards(self) -> set[int]:
        return set(mf.read_markers(self.root))

    def shard_stats(self, shard: int) -> dict[str, Any]:
        import json

        return json.loads(self._marker(shard).read_text())

    def _write_parquet(self, table: pa.Table, rel: str) -> str:
        final = self.root / rel
        tmp = mf.temp_path(final)
        try:
            pq.write_table(table, tmp, compression=PARQUET_COMPRESSION)
            digest = mf.sha256_file(tmp)
            tmp.replace(final)
        except OSError as exc:  # e.g. ENOSPC: no partial file stays, the shard is not done
            tmp.unlink(missing_ok=True)
            raise mf.write_failed(final, exc) from None
        return digest

    def _redo_tables(self, shard: int, redo: dict[str, tuple[tuple[str, str], ...]]) -> tuple[pa.Table, pa.Table, int]:
        """The done shard's kept rows and rejects (retryable rejects of the redone jobs dropped), its revision."""
        old = self.shard_stats(shard)
        captions = (pq.read_table(self.root / old["captions_file"], schema=CAPTION_SCHEMA)
                    if old.get("captions_file") else CAPTION_SCHEMA.empty_table())
        rejects = (pq.read_table(self.root / old["rejects_file"], schema=REJECT_SCHEMA)
                   if old.get("rejects_file") else REJECT_SCHEMA.empty_table())
        keep = []
        for r in zip(rejects.column("image_path").to_pylist(), rejects.column("reason").to_pylist(),
                     rejects.column("kind").to_pylist(), rejects.column("model").to_pylist(), strict=True):
            path, reason, kind, model = r
            jobs = redo.get(path)
            redone = jobs is not None and reason in RETRYABLE_REASONS and (kind is None or (kind, model) in jobs)
            keep.append(not redone)
        return captions, rejects.filter(pa.array(keep, type=pa.bool_())), int(old.get("revision", 0)) + 1

    def write_shard(
        self,
        shard: int,
        rows: Iterable[dict] | pa.Table,
        rejects: Iterable[dict] | pa.Table = (),
        extra_stats: dict | None = None,
        redo: dict[str, tuple[tuple[str, str], ...]] | None = None,
    ) -> dict[str, Any]:
        """Write one shard (captions + rejects, then its done marker) and return its stats.

        Idempotent: a shard already done is left untouched and its stored stats are returned.
        Raises :class:`ShardSchemaError` naming the column for rows that do not fit the schema,
        or the first repeated row key within the shard.

        ``redo`` (image path → (kind, model) jobs generated again, see :mod:`caption_gen.captioning.plan`)
        replaces a done shard: its rows and final rejects are kept, the retryable rejects of those jobs
        are replaced by ``rows`` / ``rejects``; the new files get the next revision name and the marker
        is replaced last (the commit point; the old files become orphans removed by :meth:`finalize`).
        """
        if not isinstance(shard, int) or shard < 0:
            raise ValueError(f"shard index must be a non-negative int, got {shard!r}")
        revision = 0
        if self.is_done(shard) and redo is None:
            return self.shard_stats(shard)
        captions = _rows_to_table(rows, CAPTION_SCHEMA, f"shard {shard} captions")
        reject_table = _rows_to_table(rejects, REJECT_SCHEMA, f"shard {shard} rejects")
        if redo is not None and self.is_done(shard):
            kept_caps, kept_rej, revision = self._redo_tables(shard, redo)
            captions = pa.concat_tables([kept_caps, captions])
            reject_table = pa.concat_tables([kept_rej, reject_table])
        n_dup, examples = duplicate_keys(captions)
        if n_dup:
            raise ShardSchemaError(
                f"shard {shard}: {n_dup} row key(s) {ROW_KEY} occur more than once, e.g. {examples[0]}"
            )
        stats: dict[str, Any] = {"shard": shard, "schema_version": SCHEMA_VERSION}
        stats.update(shard_stats(captions, reject_table))
        stats["captions_file"] = stats["captions_sha256"] = None
        stats["rejects_file"] = stats["rejects_sha256"] = None
        if captions.num_rows:
            stats["captions_sha256"] = self._write_parquet(captions, mf.captions_name(shard, revision))
            stats["captions_file"] = mf.captions_name(shard, revision)
        if reject_table.num_rows:
            stats["rejects_sha256"] = self._write_parquet(reject_table, mf.rejects_name(shard, revision))
            stats["rejects_file"] = mf.rejects_name(shard, revision)
        if revision:
            stats["revision"] = revision
        stats["extra"] = extra_stats or {}
        stats["written_at"] = mf.utc_now_iso()
        self._write_marker(shard, stats)
        return stats

    def _write_marker(self, shard: int, stats: dict[str, Any]) -> None:
        mf.write_json_atomic(self._marker(shard), stats)

    # -- cleanup -----------------------------------------------------------------------------
    def remove_temp_files(self) -> list[Path]:
        """Delete temp files left by killed writers (only call while holding the lock)."""
        removed = []
        for sub in (mf.SHARDS_DIR, mf.DONE_DIR, mf.REJECTS_DIR, "."):
            d = self.root / sub
            for p in d.iterdir() if d.is_dir() else ():
                if p.is_file() and mf.is_temp_name(p.name):
                    p.unlink(missing_ok=True)
                    removed.append(p)
        return removed

    def remove_orphans(self, markers: dict[int, dict[str, Any]]) -> list[Path]:
        """Delete shard/reject Parquet files no done marker refers to (partial shards of a killed run)."""
        known = {s.get("captions_file") for s in markers.values()} | {s.get("rejects_file") for s in markers.values()}
        removed = []
        for sub in (mf.SHARDS_DIR, mf.REJECTS_DIR):
            for p in sorted((self.root / sub).glob("*.parquet")):
                if f"{sub}/{p.name}" not in known:
                    p.unlink(missing_ok=True)
                    removed.append(p)
        return removed

    # -- finalize ----------------------------------------------------------------------------
    def finalize(
        self,
        *,
        name: str,
        config: dict | None = None,
        models: list[str] | None = None,
        banks: dict[str, str] | None = None,
        description: str | None = None,
        sources: list[dict] | None = None,
        fingerprint: dict | None = None,
    ) -> dict[str, Any]:
        """Check row-key uniqueness across done shards, write ``corpus.json`` and ``README.md``.

        Removes stale temp files and orphan shard files first. Raises :class:`CorpusError` when a
        row key occurs in more than one shard (nothing is written then).
        """
        import pyarrow.dataset as ds

        self.remove_temp_files()
        markers = mf.read_markers(self.root)
        self.remove_orphans(markers)
        paths = [str(self.root / s["captions_file"]) for _, s in sorted(markers.items()) if s.get("captions_file")]
        n_images = 0
        if paths:
            keys = ds.dataset(paths, schema=CAPTION_SCHEMA, format="parquet").to_table(columns=list(ROW_KEY))
            n_dup, examples = duplicate_keys(keys)
            if n_dup:
                raise CorpusError(
                    f"corpus {self.root}: {n_dup} row key(s) occur in more than one shard, e.g. {examples[0]}"
                )
            n_images = int(pc.count_distinct(keys.column("image_id")).as_py())
        manifest = mf.build_manifest(
            markers,
            name=name,
            image_root=self.image_root if self.image_root is not None else (mf.read_manifest(self.root) or {}).get("image_root"),
            config=config,
            models=models,
            banks=banks,
            description=description,
            sources=sources,
            images=n_images,
            previous=mf.read_manifest(self.root),
            fingerprint=fingerprint,
        )
        mf.write_json_atomic(self.root / mf.MANIFEST_NAME, manifest)
        mf.write_bytes_atomic(self.root / mf.CARD_NAME, render_card(manifest, self.root).encode())
        return manifest
