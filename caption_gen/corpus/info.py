"""``pedes corpus info``: counts of a corpus computed from its data (not trusted from the manifest).

Rows by (kind, model) with validation passed/failed, distinct images, rejects by reason and stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from caption_gen.corpus.errors import CorpusError
from caption_gen.corpus.reader import Corpus


def _counts(table, keys: list[str]) -> list[dict[str, Any]]:
    """Rows per key group (plus the sum of a ``passed`` 0/1 column when present), sorted by key."""
    if table.num_rows == 0:
        return []
    aggs = [([], "count_all")] + ([("passed", "sum")] if "passed" in table.column_names else [])
    agg = table.group_by(keys, use_threads=False).aggregate(aggs)
    return sorted(agg.to_pylist(), key=lambda r: tuple(str(r[k]) for k in keys))


def corpus_info(root: str | Path) -> dict[str, Any]:
    """A JSON-able summary of the corpus at ``root`` (raises NotACorpusError when it is not one)."""
    corpus = Corpus.open(root)
    try:
        table = corpus.captions(columns=["image_id", "kind", "model", "validation"])
        rejects = corpus.rejects()
    except (OSError, pa.ArrowException) as exc:
        raise CorpusError(f"corpus {corpus.root}: cannot read its shards ({exc}); run `pedes corpus validate`") from exc
    passed = pc.struct_field(table.column("validation"), ["passed"]) if table.num_rows else None
    slim = table.select(["kind", "model"])
    if passed is not None:
        slim = slim.append_column("passed", pc.cast(passed, "int64"))
    groups = []
    for r in _counts(slim, ["kind", "model"]):
        n_passed = int(r.get("passed_sum") or 0)
        groups.append(
            {"kind": r["kind"], "model": r["model"], "rows": int(r["count_all"]), "passed": n_passed,
             "failed": int(r["count_all"]) - n_passed}
        )
    by_reason = [
        {"reason": r["reason"], "stage": r["stage"], "count": int(r["count_all"])}
        for r in _counts(rejects.select(["stage", "reason"]), ["stage", "reason"])
    ]
    n_passed = sum(g["passed"] for g in groups)
    m = corpus.manifest
    return {
        "root": str(corpus.root),
        "name": m.get("name"),
        "finalized": corpus.finalized,
        "schema_version": m.get("schema_version"),
        "created_at": m.get("created_at"),
        "code_version": m.get("code_version"),
        "image_root": corpus.image_root(),
        "shards": len(corpus.markers),
        "rows": table.num_rows,
        "images": int(pc.count_distinct(table.column("image_id")).as_py()) if table.num_rows else 0,
        "validation": {"passed": n_passed, "failed": table.num_rows - n_passed},
        "by_kind_model": groups,
        "rejects": rejects.num_rows,
        "rejects_by_reason": by_reason,
    }
