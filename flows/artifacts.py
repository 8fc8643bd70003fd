"""Small summaries published as Prefect artifacts (and written next to the outputs); docs/prefect.md.

Only summaries go to the Prefect database — counts, rates, tables and links — never corpus rows.
A markdown summary may carry tables (:class:`Summary`, a ``str`` with ``tables``): :func:`publish_markdown`
publishes each of them as a Prefect *table* artifact too (``create_table_artifact``, key
``<key without -summary>-<table name>``), so the UI shows sortable tables next to the text. The
``build-corpus`` summary carries ``acceptance`` (kind × model: rows, accepted, rate) and ``rejects``
(reason, count)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


class Summary(str):
    """Markdown text plus named tables (lists of row dicts) to publish as table artifacts."""

    tables: dict[str, list[dict[str, Any]]]

    def __new__(cls, text: str, tables: dict[str, list[dict[str, Any]]] | None = None) -> Summary:
        obj = super().__new__(cls, text)
        obj.tables = dict(tables or {})
        return obj


def corpus_tables(summary: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """``acceptance`` and ``rejects`` rows of a ``build-corpus`` summary."""
    acceptance = []
    for key, v in sorted(summary.get("acceptance", {}).items()):
        kind, model = key.split("|", 1) if "|" in key else (key, "")
        rows = int(v.get("rows", 0))
        acceptance.append({"kind": kind, "model": model, "rows": rows, "accepted": int(v.get("accepted", 0)),
                           "rate": round(int(v.get("accepted", 0)) / rows, 4) if rows else 0.0})
    rejects = [{"reason": r, "count": int(n)}
               for r, n in sorted(summary.get("rejects_by_reason", {}).items(), key=lambda x: (-x[1], x[0]))]
    return {"acceptance": acceptance, "rejects": rejects}


def corpus_summary_markdown(summary: dict[str, Any]) -> Summary:
    """Run summary of ``build-corpus``: counts, acceptance by kind/model, rejects by reason, retries, images/s."""
    lines = [f"# build-corpus: {summary.get('name', '')}", "",
             f"- corpus: `{summary.get('out')}`",
             f"- images: {summary.get('images', 0)} in {summary.get('shards_total', 0)} shards "
             f"({summary.get('shards_run', 0)} run now, {summary.get('shards_skipped', 0)} already done)",
             f"- captions: {summary.get('rows', 0)} rows, {summary.get('accepted', 0)} accepted "
             f"({_fmt(summary.get('acceptance_rate') or 0.0)}), rejects: {summary.get('rejects', 0)}",
             f"- retries: {summary.get('task_retries', 0)} shard-task retries, "
             f"{summary.get('backend_retries', 0)} backend retries; failed shards: {summary.get('failed_shards', [])}",
             f"- throughput: {_fmt(summary.get('images_per_s') or 0.0)} images/s over {_fmt(summary.get('wall_s') or 0.0)} s",
             ""]
    acc = summary.get("acceptance", {})
    if acc:
        lines += ["## Acceptance by kind × model", "",
                  table(["kind", "model", "rows", "accepted", "rate"],
                        [[k, m, v["rows"], v["accepted"], v["rows"] and v["accepted"] / v["rows"]]
                         for (k, m), v in sorted(((tuple(key.split("|", 1)), v) for key, v in acc.items()))]), ""]
    rej = summary.get("rejects_by_reason", {})
    if rej:
        lines += ["## Rejects by reason", "", table(["reason", "count"], sorted(rej.items(), key=lambda x: -x[1])), ""]
    return Summary("\n".join(lines), corpus_tables(summary))


def publish_markdown(markdown: str, *, key: str, description: str, out: str | Path | None = None) -> None:
    """Create a Prefect markdown artifact (``key``: lowercase letters, digits, dashes) and, with ``out``,
    write the same text to that file; the tables of a :class:`Summary` become table artifacts."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    if out is not None:
        Path(out).write_text(str(markdown) + "\n", encoding="utf-8")
    create_markdown_artifact(str(markdown), key=key, description=description)
    base = key.removesuffix("-summary")
    for name, rows in getattr(markdown, "tables", {}).items():
        if rows:
            create_table_artifact(rows, key=f"{base}-{name}", description=f"{description}: {name}")


def publish_link(path: str | Path, *, key: str, description: str) -> None:
    """A Prefect link artifact pointing at a local file (e.g. the styles inspector page)."""
    from prefect.artifacts import create_link_artifact

    p = Path(path).resolve()
    create_link_artifact(p.as_uri(), link_text=p.name, key=key, description=description)
