"""Cluster inspector: one self-contained HTML page for a styles directory (DESIGN §4, seed 000 §3.3).

The page opens with a side-by-side comparison of all styles (``table#comparison``: size, prompt, the
features that distinguish the style with their values vs the corpus, one exemplar), each row linking
to the style's section, and says which features the clustering used (``#features-note``; a build
without CLIP weights says so). Rendered with a Jinja2 template (autoescaped). Per cluster: size and share, style prompt (and whether the LLM or the statistics wrote it), up to a
dozen exemplars (original and neutralized text), a stylometric summary; for the run: a 2-D projection
scatter (the first two PCA components of the clustering space) as an embedded base64 PNG made with
matplotlib's Agg backend, the clustering parameters and quality figures (clusters before
stabilization, noise share before reassignment, merges, silhouette). No scripts, fonts or images are
loaded from the network; the page is also valid without JavaScript.
"""

from __future__ import annotations

import base64
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
#comparison td{font-size:12px;max-width:380px} #comparison td.p{max-width:460px} ul.dist{margin:0;padding-left:16px}
.warn{background:#fff7e6;border-left:4px solid #f59e0b;padding:6px 10px} .note{background:#f1f7ff;border-left:4px solid #3b82f6;padding:6px 10px}
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


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list | dict):
        return json.dumps(v, default=str)[:300]
    return str(v)


_PAGE = """<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>
<meta name='viewport' content='width=device-width,initial-scale=1'><link rel='icon' href='data:,'>
<title>Style clusters — {{ source_name }}</title><style>{{ css|safe }}</style></head><body>
<h1>Style clusters</h1>
<div class='muted'>source {{ source }} ({{ kind }}), {{ n_texts }} texts, {{ styles|length }} styles, bank {{ version }}</div>
<p id='features-note' class='{{ "warn" if no_clip else "note" }}'>Features: {{ features_note }}</p>
<p id='cluster-counts' class='muted'>Clusters: {{ counts.clusters_found }} found → {{ counts.after_stabilization }} after
stabilization → {{ counts.after_profile_merge }} after merging indistinct style profiles ({{ counts.profile_rule }}) →
{{ counts.after_prompt_merge }} after merging prompts that say the same ({{ counts.prompt_rule }}). Max prompt similarity
{{ "%.3f"|format(sim_max) }} (bound {{ "%.2f"|format(sim_bound) }}).</p>
<h2>Styles side by side</h2>
<table id='comparison'><thead><tr><th>style</th><th>size</th><th>prompt</th><th>distinguishing features (style vs corpus)</th><th>exemplar</th></tr></thead><tbody>
{% for st in styles %}<tr data-style-id='{{ st.id }}'>
<td><span class='swatch' style='background:{{ st.color }}'></span><a href='#{{ st.id }}'>{{ st.id }}</a></td>
<td>{{ st.size }}<br><span class='muted'>{{ "%.1f%%"|format(100 * st.share) }}</span></td>
<td class='p'>{{ st.prompt }}</td>
<td><ul class='dist'>{% for d in st.distinguishing %}<li><b>{{ d.label }}</b>: {{ d.value_text }} vs {{ d.corpus_text }}
<span class='muted'>({{ "%+.1f"|format(d.z) }} sd)</span></li>{% else %}<li class='muted'>none beyond {{ min_z }} sd</li>{% endfor %}</ul></td>
<td class='ex1'>{{ st.exemplar }}<div class='muted'>{{ st.exemplar_neutral }}</div></td></tr>
{% endfor %}</tbody></table>
<h2>Overview</h2><div class='grid'>
<div><img alt='2-D projection of the style space' src='data:image/png;base64,{{ png }}'></div>
<div><h3>Quality</h3>{{ kv(quality) }}<h3>Parameters</h3>{{ kv(params) }}<h3>Features</h3>{{ kv(features) }}
<h3>Timings (s)</h3>{{ kv(timings) }}</div></div>
<h2>Styles</h2>
{% for st in styles %}<section class='cluster' id='{{ st.id }}' data-style-id='{{ st.id }}'>
<h3><span class='swatch' style='background:{{ st.color }}'></span>{{ st.id }} — {{ st.size }} texts ({{ "%.1f%%"|format(100 * st.share) }})</h3>
<div class='prompt'>{{ st.prompt }}</div>
<div class='muted'>prompt written by: {{ st.source }} · <a href='#comparison'>back to the comparison</a></div>
<div class='grid'><div><table class='ex'><tr><th>original</th><th>neutralized</th></tr>
{% for o, n in st.exemplars %}<tr><td>{{ o }}</td><td>{{ n }}</td></tr>{% endfor %}</table></div>
<div><h3>Style vs corpus</h3><table class='contrast'><tr><th>feature</th><th>style</th><th>corpus</th><th>z</th></tr>
{% for d in st.contrast %}<tr><td>{{ d.label }}</td><td>{{ d.value_text }}</td><td>{{ d.corpus_text }}</td><td>{{ "%+.2f"|format(d.z) }}</td></tr>{% endfor %}
</table>{{ kv(st.stats) }}</div></div></section>
{% endfor %}</body></html>
"""


def _kv_html(rows: dict[str, Any]) -> Any:
    from markupsafe import Markup, escape

    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(_fmt_value(v))}</td></tr>" for k, v in rows.items())
    return Markup(f"<table>{cells}</table>")


def render_report(styles_dir: str | Path, *, max_points: int = 20000, seed: int = 0) -> tuple[str, bytes]:
    """HTML text and scatter PNG of a styles directory."""
    import jinja2
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
    feats = summary.get("features", {})
    exemplar_rows = summary.get("exemplar_rows") or []
    stats_all = summary.get("statistics") or []
    contrast_all = summary.get("contrast") or []
    dist_all = summary.get("distinguishing") or []
    styles = []
    for s, entry in enumerate(bank.styles):
        members = np.flatnonzero(labels == s)
        rows = exemplar_rows[s] if s < len(exemplar_rows) else members[:12].tolist()
        first = rows[0] if rows else None
        styles.append({
            "id": entry.style_id, "color": colors[s], "size": len(members), "share": len(members) / max(1, len(table)),
            "prompt": entry.prompt, "source": entry.prompt_source,
            "distinguishing": [dict(x) for x in entry.distinguishing] or list(dist_all[s] if s < len(dist_all) else []),
            "exemplar": str(table["text"].iat[first]) if first is not None else "",
            "exemplar_neutral": str(table["neutralized"].iat[first]) if first is not None else "",
            "exemplars": [(str(table["text"].iat[i]), str(table["neutralized"].iat[i])) for i in rows[:12]],
            "contrast": contrast_all[s] if s < len(contrast_all) else [],
            "stats": stats_all[s] if s < len(stats_all) else {},
        })
    merge = q.get("merge", {})
    counts = {k: merge.get(k, "?") for k in ("clusters_found", "after_stabilization", "after_profile_merge",
                                             "after_prompt_merge", "profile_rule", "prompt_rule")}
    quality = {
        "styles (after stabilization and merging)": q.get("styles"),
        "clusters found (before)": q.get("clusters_raw"),
        "noise share before reassignment": q.get("noise_share_before"),
        "noise points reassigned": q.get("noise_reassigned"),
        "small clusters merged": len(q.get("merged", [])),
        "indistinct styles merged (profiles)": len(merge.get("profile_merges", [])),
        "same-saying prompts merged": len(merge.get("prompt_merges", [])),
        "min cluster size": q.get("min_cluster_size"),
        "silhouette (sampled)": q.get("silhouette"),
        "content survival after neutralization": summary.get("neutralizer", {}).get("content_survival"),
    }
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    page = env.from_string(_PAGE).render(
        css=_CSS, source_name=Path(str(src.get("origin", str(d)))).name, source=src.get("origin"), kind=src.get("kind"),
        n_texts=len(table), version=bank.version, styles=styles, png=base64.b64encode(png).decode(),
        features_note=feats.get("note") or feats.get("clip") or "?", no_clip=not feats.get("clip_weights"),
        counts=counts, sim_max=float(q.get("prompt_similarity_max") or 0.0),
        sim_bound=float(q.get("prompt_similarity_bound") or 0.8), min_z=0.5, quality=quality,
        params={"algorithm": summary.get("algorithm"), **summary.get("params", {}), "seed": summary.get("seed"),
                "neutralizer": summary.get("neutralizer", {}).get("kind")},
        features=feats, timings=summary.get("timings", {}), kv=_kv_html,
    )
    return page, png


def write_report(styles_dir: str | Path, *, max_points: int = 20000, seed: int = 0) -> Path:
    """Write ``report.html`` (and ``scatter.png``) into ``styles_dir``; returns the page path."""
    d = Path(styles_dir)
    page, png = render_report(d, max_points=max_points, seed=seed)
    (d / SCATTER_NAME).write_bytes(png)
    tmp = d / (REPORT_NAME + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(d / REPORT_NAME)
    return d / REPORT_NAME
