"""Small markdown summaries published as Prefect artifacts (and written next to the outputs).

Only summaries go to the Prefect database — counts, rates, table text and links — never rows."""

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


def corpus_summary_markdown(summary: dict[str, Any]) -> str:
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
    return "\n".join(lines)


def publish_markdown(markdown: str, *, key: str, description: str, out: str | Path | None = None) -> None:
    """Create a Prefect markdown artifact (``key``: lowercase letters, digits, dashes) and, with ``out``,
    write the same text to that file."""
    from prefect.artifacts import create_markdown_artifact

    if out is not None:
        Path(out).write_text(markdown + "\n", encoding="utf-8")
    create_markdown_artifact(markdown, key=key, description=description)


def publish_link(path: str | Path, *, key: str, description: str) -> None:
    """A Prefect link artifact pointing at a local file (e.g. the styles inspector page)."""
    from prefect.artifacts import create_link_artifact

    p = Path(path).resolve()
    create_link_artifact(p.as_uri(), link_text=p.name, key=key, description=description)
