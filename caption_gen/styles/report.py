"""Cluster inspector: one self-contained HTML page for a styles directory (DESIGN §4).

Per cluster: size and share, style prompt (and whether the LLM or the statistics wrote it), up to a
dozen exemplars (original and neutralized text), a stylometric summary; for the run: a 2-D projection
scatter (the first two PCA components of the clustering space) as an embedded base64 PNG made with
matplotlib's Agg backend, the clustering parameters and quality figures (clusters before
stabilization, noise share before reassignment, merges, silhouette). No scripts, fonts or images are
loaded from the network; the page is also valid without JavaScript.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from pedes_core.errors import InputError

REPORT_NAME = "report.html"
SCATTER_NAME = "scatter.png"

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#1d232a;background:#fafbfc}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px} h3{font-size:16px;margin:0 0 6px}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #d7dce1;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4} .grid{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.cluster{background:#fff;border:1px solid #d7dce1;border-radius:6px;padding:12px 16px;margin:14px 0}
.prompt{background:#f1f7ff;border-left:4px solid #3b82f6;padding:6px 10px;margin:6px 0 10px;font-size:14px}
.muted{color:#5c6670;font-size:12px} .ex td{font-size:12px;max-width:560px} img{max-width:100%;border:1px solid #d7dce1}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:middle}
"""


def _colors(k: int) -> list[str]:
    import matplotlib

    cmap = matplotlib.colormaps["tab20" if k > 10 else "tab10"]
    return [matplotlib.colors.to_hex(cmap(i % cmap.N)) for i in range(k)]


def scatter_png(xy: np.ndarray, labels: np.ndarray, names: list[str], *, max_points: int, seed: int) -> bytes:
    """PNG bytes of the 2-D projection, one color per style (at most ``max_points`` points)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    idx = np.arange(len(xy)) if len(xy) <= max_points else np.sort(rng.choice(len(xy), max_points, replace=False))
    colors = _colors(len(names))
    fig, ax = plt.subplots(figsize=(7, 5.5), dpi=100)
    for s, name in enumerate(names):
        m = idx[labels[idx] == s]
        ax.scatter(xy[m, 0], xy[m, 1], s=6, alpha=0.6, color=colors[s], label=f"{name} ({int((labels == s).sum())})")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(f"Style clusters ({len(xy)} texts, {len(idx)} shown)")
    if len(names) <= 20:
        ax.legend(fontsize=7, markerscale=2, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _kv_table(rows: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, list | dict):
            return html.escape(json.dumps(v, default=str)[:300])
        return html.escape(str(v))

    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{fmt(v)}</td></tr>" for k, v in rows.items()) + "</table>"


def render_report(styles_dir: str | Path, *, max_points: int = 20000, seed: int = 0) -> tuple[str, bytes]:
    """HTML text and scatter PNG of a styles directory."""
    import pandas as pd

    from caption_gen.styles.bank import load_style_bank

    d = Path(styles_dir)
    for name in ("assignments.parquet", "bank.json", "clustering.json"):
        if not (d / name).is_file():
            raise InputError(f"{d}: not a styles directory (missing {name}; run 'pedes styles build' first)")
    bank = load_style_bank(d)
    summary = json.loads((d / "clustering.json").read_text(encoding="utf-8"))
    table = pd.read_parquet(d / "assignments.parquet", columns=["text", "neutralized", "style_id", "pc1", "pc2"])
    names = [s.style_id for s in bank.styles]
    pos = {s: i for i, s in enumerate(names)}
    unknown = set(table["style_id"].unique()) - set(pos)
    if unknown:
        raise InputError(f"{d}/assignments.parquet: style_id {sorted(unknown)[0]!r} is not in bank.json")
    labels = table["style_id"].map(pos).to_numpy()
    png = scatter_png(table[["pc1", "pc2"]].to_numpy(np.float32), labels, names, max_points=max_points, seed=seed)
    colors = _colors(len(names))
    q = summary.get("quality", {})
    src = summary.get("source", {})
    exemplar_rows = summary.get("exemplar_rows") or []
    stats_all = summary.get("statistics") or []
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        "<link rel='icon' href='data:,'>",
        f"<title>Style clusters — {html.escape(Path(src.get('origin', str(d))).name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Style clusters</h1><div class='muted'>source {html.escape(str(src.get('origin')))} ({html.escape(str(src.get('kind')))}), "
        f"{len(table)} texts, {len(names)} styles, bank {html.escape(bank.version)}</div>",
        "<h2>Overview</h2><div class='grid'>",
        f"<div><img alt='2-D projection of the style space' src='data:image/png;base64,{base64.b64encode(png).decode()}'></div>",
        "<div><h3>Quality</h3>" + _kv_table({
            "styles (after stabilization)": q.get("styles"),
            "clusters found (before)": q.get("clusters_raw"),
            "noise share before reassignment": q.get("noise_share_before"),
            "noise points reassigned": q.get("noise_reassigned"),
            "small clusters merged": len(q.get("merged", [])),
            "min cluster size": q.get("min_cluster_size"),
            "silhouette (sampled)": q.get("silhouette"),
            "content survival after neutralization": summary.get("neutralizer", {}).get("content_survival"),
        }),
        "<h3>Parameters</h3>" + _kv_table({"algorithm": summary.get("algorithm"), **summary.get("params", {}),
                                            "seed": summary.get("seed"), "neutralizer": summary.get("neutralizer", {}).get("kind")}),
        "<h3>Features</h3>" + _kv_table(summary.get("features", {})),
        "<h3>Timings (s)</h3>" + _kv_table(summary.get("timings", {})) + "</div></div>",
        "<h2>Styles</h2>",
    ]
    for s, entry in enumerate(bank.styles):
        members = np.flatnonzero(labels == s)
        rows = exemplar_rows[s] if s < len(exemplar_rows) else members[:12].tolist()
        stats = stats_all[s] if s < len(stats_all) else {}
        ex_html = "".join(
            f"<tr><td>{html.escape(str(table['text'].iat[i]))}</td><td>{html.escape(str(table['neutralized'].iat[i]))}</td></tr>"
            for i in rows[:12]
        )
        parts.append(
            f"<section class='cluster' id='{html.escape(entry.style_id)}' data-style-id='{html.escape(entry.style_id)}'>"
            f"<h3><span class='swatch' style='background:{colors[s]}'></span>{html.escape(entry.style_id)} — "
            f"{len(members)} texts ({len(members) / max(1, len(table)):.1%})</h3>"
            f"<div class='prompt'>{html.escape(entry.prompt)}</div>"
            f"<div class='muted'>prompt written by: {html.escape(entry.prompt_source)}</div>"
            "<div class='grid'><div><table class='ex'><tr><th>original</th><th>neutralized</th></tr>"
            f"{ex_html}</table></div><div>{_kv_table({k: v for k, v in stats.items()})}</div></div></section>"
        )
    parts.append("</body></html>")
    return "".join(parts), png


def write_report(styles_dir: str | Path, *, max_points: int = 20000, seed: int = 0) -> Path:
    """Write ``report.html`` (and ``scatter.png``) into ``styles_dir``; returns the page path."""
    d = Path(styles_dir)
    page, png = render_report(d, max_points=max_points, seed=seed)
    (d / SCATTER_NAME).write_bytes(png)
    tmp = d / (REPORT_NAME + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(d / REPORT_NAME)
    return d / REPORT_NAME
