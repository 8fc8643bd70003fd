"""Dataset card (``README.md``) of a corpus: what it is, how it was made, counts, source licenses.

Built with huggingface_hub's card classes (:class:`~huggingface_hub.DatasetCardData` for the YAML
metadata, :class:`~huggingface_hub.DatasetCard` for the file), so the Hub reads it as it reads its own
cards (docs/corpus-card.md):

* ``license``: the sources' license when they agree on one Hub license id (``cc0-1.0``, ``mit`` …);
  otherwise ``other`` with ``license_name`` (a slug of the sources' terms) and ``license_link`` (the
  source's ``license_link`` when recorded, else this card's "Sources and licenses" section); ``unknown``
  when no source is recorded;
* ``task_categories`` (text-to-image, image-to-text), ``size_categories`` from the caption rows, tags;
* ``configs``: ``default`` over ``shards/*.parquet`` and ``rejects`` over ``rejects/*.parquet`` (when
  there are rejects), so ``datasets.load_dataset(<corpus dir>)`` works without our code. Splits come
  from the ``split`` column when the corpus has one (an imported benchmark): when each shard holds one
  split, the ``default`` config maps every split to its shard files; when shards mix splits, files
  cannot be mapped to splits, so the card has one ``train`` split and its text gives the per-split
  counts of the ``split`` column to filter on. Without a ``split`` column: one ``train`` split (the Hub's
  name for all data).

No absolute local path goes into the card: the image root and annotation files are named by their last
path component only (``corpus.json`` keeps the full paths for local use).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePath
from typing import Any

from caption_gen.corpus.schema import CAPTION_SCHEMA, ROW_KEY

#: license ids the Hub knows that a source may name directly (lower case)
HUB_LICENSES = frozenset({
    "apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause", "cc0-1.0", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0",
    "cc-by-nc-sa-4.0", "cc-by-nc-nd-4.0", "cc-by-nd-4.0", "cc-by-3.0", "cc-by-nc-3.0", "cc-by-sa-3.0",
    "gpl-3.0", "lgpl-3.0", "agpl-3.0", "odc-by", "odbl", "pddl", "openrail", "unknown", "other",
})
TASK_CATEGORIES = ["text-to-image", "image-to-text"]
TAGS = ["person-re-identification", "text-based-person-search", "pedes-forge"]
LICENSE_SECTION = "Sources and licenses"
_SIZE_BOUNDS = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]


def size_category(rows: int) -> str:
    """The Hub's ``size_categories`` bucket of ``rows``."""
    for bound, name in _SIZE_BOUNDS:
        if rows < bound:
            return name
    return "n>1B"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:64] or "custom"


def _anchor(title: str) -> str:
    return "#" + re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


def license_fields(sources: list[dict[str, Any]]) -> dict[str, str]:
    """``license`` (+ ``license_name`` / ``license_link`` when ``other``) from the sources (module docstring)."""
    licenses = sorted({str(s["license"]).strip() for s in sources if s.get("license")})
    if not licenses:
        return {"license": "unknown"}
    if len(licenses) == 1 and licenses[0].lower() in HUB_LICENSES and licenses[0].lower() != "other":
        return {"license": licenses[0].lower()}
    links = sorted({str(s["license_link"]) for s in sources if s.get("license_link")})
    return {"license": "other", "license_name": _slug(" + ".join(licenses)),
            "license_link": links[0] if len(links) == 1 else f"README.md{_anchor(LICENSE_SECTION)}"}


def shard_splits(root: str | Path, manifest: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Shard path → {split: rows} of its ``split`` column (nulls under ``""``); empty without a root."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out: dict[str, dict[str, int]] = {}
    for shard in manifest.get("shards", []):
        path = Path(root) / shard["path"]
        if not path.is_file():
            return {}
        col = pq.read_table(path, columns=["split"]).column("split")
        counts = pc.value_counts(col.fill_null(""))
        out[shard["path"]] = {str(v["values"]): int(v["counts"]) for v in counts.to_pylist()}
    return out


def _split_plan(splits: dict[str, dict[str, int]]) -> tuple[list[dict[str, Any]], dict[str, int], bool]:
    """(data_files of the default config, rows per split value, whether files map to splits)."""
    totals: dict[str, int] = {}
    for counts in splits.values():
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v
    named = {k for k in totals if k}
    if not named:
        return [{"split": "train", "path": "shards/*.parquet"}], totals, False
    pure = all(len(c) == 1 and "" not in c for c in splits.values())
    if not pure:
        return [{"split": "train", "path": "shards/*.parquet"}], totals, False
    by_split: dict[str, list[str]] = {}
    for path, counts in sorted(splits.items()):
        by_split.setdefault(next(iter(counts)), []).append(path)
    order = {"train": 0, "validation": 1, "val": 1, "test": 2}
    files = [{"split": s, "path": paths} for s, paths in sorted(by_split.items(), key=lambda kv: (order.get(kv[0], 3), kv[0]))]
    return files, totals, True


def _table(rows: list[tuple[str, Any]], head: tuple[str, str]) -> list[str]:
    if not rows:
        return ["(none)", ""]
    out = [f"| {head[0]} | {head[1]} |", "|---|---:|"]
    out += [f"| {k} | {v} |" for k, v in rows]
    return out + [""]


def _local_name(value: Any) -> Any:
    """The last component of a local absolute path (URLs and other values unchanged)."""
    if isinstance(value, str) and "://" not in value and PurePath(value).is_absolute():
        return PurePath(value).name
    return value


def card_data(manifest: dict[str, Any], splits: dict[str, dict[str, int]] | None = None):
    """The card's :class:`~huggingface_hub.DatasetCardData`."""
    from huggingface_hub import DatasetCardData

    totals = manifest.get("totals", {})
    data_files, _, _ = _split_plan(splits or {})
    configs = [{"config_name": "default", "data_files": data_files}]
    if manifest.get("rejects"):
        configs.append({"config_name": "rejects", "data_files": [{"split": "train", "path": "rejects/*.parquet"}]})
    return DatasetCardData(
        pretty_name=str(manifest.get("name", "corpus")),
        **license_fields(manifest.get("sources") or []),
        task_categories=list(TASK_CATEGORIES),
        size_categories=[size_category(int(totals.get("rows", 0)))],
        language=["en"],
        tags=list(TAGS),
        configs=configs,
    )


def _body(manifest: dict[str, Any], splits: dict[str, dict[str, int]]) -> str:
    totals = manifest.get("totals", {})
    sources = manifest.get("sources") or []
    _, split_rows, mapped = _split_plan(splits)
    image_root = manifest.get("image_root")
    lines = [f"# {manifest.get('name', 'corpus')}", ""]
    lines += [
        manifest.get("description")
        or "Image–text corpus of pedestrian images: one row per caption (long format), written by PEDES Forge.",
        "",
        "## What",
        "",
        f"- {totals.get('rows', 0)} caption rows for {totals.get('images', '?')} images in "
        f"{len(manifest.get('shards', []))} Parquet shards (`shards/captions-NNNNN.parquet`, zstd).",
        f"- {totals.get('rejects', 0)} rejected images/captions with reasons in `rejects/` (config `rejects`).",
        f"- Row key (unique across the corpus): `({', '.join(ROW_KEY)})`.",
        "- Image paths (`image_path`) are relative to the image root the corpus was built from"
        + (f" (`{_local_name(image_root)}`)" if image_root else "") + "; images are not included.",
        "",
        "Columns: " + ", ".join(f"`{f.name}`" for f in CAPTION_SCHEMA) + ".",
        "",
    ]
    named = {k: v for k, v in split_rows.items() if k}
    if named:
        lines += ["## Splits", ""]
        lines += _table(sorted(named.items()), ("split", "rows"))
        if not mapped:
            lines += ["Shards mix splits, so the `default` config has one `train` split holding every row; "
                      "select a benchmark split with the `split` column "
                      "(`ds.filter(lambda r: r['split'] == 'test')`).", ""]
    lines += [
        "## How it was made",
        "",
        f"- Schema version {manifest.get('schema_version')}, code {manifest.get('code_version', {}).get('caption_gen')}"
        f" (git `{manifest.get('code_version', {}).get('git')}`), created {manifest.get('created_at')},"
        f" updated {manifest.get('updated_at')}.",
        "- Models: " + (", ".join(f"`{m}`" for m in manifest.get("models", [])) or "(none)") + ".",
    ]
    banks = manifest.get("banks") or {}
    if banks:
        lines.append("- Prompt banks (sha256): " + ", ".join(f"{k} `{v[:16]}`" for k, v in banks.items()) + ".")
    lines += ["- The full configuration used is in `corpus.json` (`config`).", "", "## Counts", ""]
    lines += _table(sorted(totals.get("by_kind", {}).items()), ("kind", "rows"))
    lines += _table(sorted(totals.get("by_model", {}).items()), ("model", "rows"))
    lines += _table(sorted(totals.get("validation", {}).items()), ("validation", "rows"))
    lines += ["Rejects by reason:", ""]
    lines += _table(sorted(totals.get("rejects_by_reason", {}).items()), ("reason", "count"))
    lines += [f"## {LICENSE_SECTION}", ""]
    if sources:
        for s in sources:
            desc = ", ".join(f"{k}: {_local_name(v)}" for k, v in s.items()
                             if k not in ("name", "license") and not isinstance(v, dict | list))
            lines.append(f"- {s.get('name', '(unnamed)')} — license: {s.get('license') or 'unknown'}" + (f" ({desc})" if desc else ""))
    else:
        lines.append("- No source recorded; the license of the images and of this corpus is unknown.")
    lines += [
        "",
        "Captions generated by models inherit the terms of those models and of the source images.",
        "",
        "## Loading",
        "",
        "```python",
        "import pandas as pd; df = pd.read_parquet('shards')",
        "import duckdb; duckdb.sql(\"SELECT kind, count(*) FROM 'shards/*.parquet' GROUP BY kind\")",
        "from datasets import load_dataset; ds = load_dataset('.')  # configs: default, rejects",
        "```",
        "",
    ]
    return "\n".join(lines)


def render_card(manifest: dict[str, Any], root: str | Path | None = None) -> str:
    """The ``README.md`` text; ``root`` (the corpus directory) lets the card read each shard's ``split`` column."""
    from huggingface_hub import DatasetCard

    splits = shard_splits(root, manifest) if root is not None else {}
    data = card_data(manifest, splits)
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{_body(manifest, splits)}")
    return str(card)
