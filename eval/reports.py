"""Result files: JSON, Markdown tables shaped like seed 002 Tables 3 and 4, CMC plots (matplotlib Agg).

* :func:`direct_transfer_table` — Table 3: rows = initialisation (pretraining), columns = target
  benchmark R1 / mAP (text-to-image), the pretrained checkpoint evaluated on each test split.
* :func:`finetune_table` — Table 4: rows = (initialisation, fine-tuning source), columns = target
  benchmark R1 / mAP; off-diagonal cells are the cross-domain matrix.

Every table ends with a note line naming the mSD order its numbers used (``ranked``: seed 004 §3.4
over the ranked list; ``gallery``: the public UFineBench calculator), see :func:`msd_note`; rows of a
re-ranked evaluation (stage 2, ``t2i_rerank``) are labelled as such.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

MISSING = "–"
MSD_ORDER_TEXT = {
    "ranked": "ranked-list order (seed 004 §3.4 formula)",
    "gallery": "gallery order (public UFineBench mSD_Calculator.py)",
}
RERANK_SUFFIX = " + re-rank"


def msd_note(orders: str | Iterable[str] | None) -> str:
    """The table note naming the mSD order(s) used, e.g. ``mSD order: ranked-list order (...)``."""
    if orders is None:
        return ""
    names = [orders] if isinstance(orders, str) else sorted(set(orders))
    if not names:
        return ""
    return "\nmSD order: " + "; ".join(MSD_ORDER_TEXT.get(n, n) for n in names) + "\n"


def _fmt(metrics: Mapping[str, Any] | None, key: str) -> str:
    if not metrics or key not in metrics or metrics[key] is None:
        return MISSING
    value = float(metrics[key])
    return MISSING if math.isnan(value) else f"{value:.2f}"


def _header(targets: Sequence[str], lead: Sequence[str]) -> list[str]:
    top = "| " + " | ".join(lead) + " | " + " | ".join(f"{t} R1 | {t} mAP" for t in targets) + " |"
    sep = "|" + "---|" * (len(lead) + 2 * len(targets))
    return [top, sep]


def direct_transfer_table(results: Mapping[str, Mapping[str, Mapping[str, Any]]], targets: Sequence[str],
                          msd_order: str | Iterable[str] | None = None) -> str:
    """``results[init][target]`` = t2i metrics dict → Markdown (seed 002 Table 3 shape) + mSD-order note."""
    lines = _header(targets, ["Init"])
    for init, row in results.items():
        cells = [c for t in targets for c in (_fmt(row.get(t), "R1"), _fmt(row.get(t), "mAP"))]
        lines.append(f"| {init} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" + msd_note(msd_order)


def finetune_table(
    results: Mapping[str, Mapping[str, Mapping[str, Mapping[str, Any]]]], targets: Sequence[str],
    msd_order: str | Iterable[str] | None = None,
) -> str:
    """``results[init][source][target]`` = t2i metrics → Markdown (seed 002 Table 4 shape, cross-domain matrix)."""
    lines = _header(targets, ["Init", "Source"])
    for init, by_source in results.items():
        for i, (source, row) in enumerate(by_source.items()):
            cells = [c for t in targets for c in (_fmt(row.get(t), "R1"), _fmt(row.get(t), "mAP"))]
            lines.append(f"| {init if i == 0 else ''} | {source} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" + msd_note(msd_order)


def write_json(payload: Mapping[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float))
    tmp.replace(path)
    return path


def plot_cmc(curves: Mapping[str, Sequence[float]], path: str | Path, max_rank: int = 20) -> Path:
    """CMC curves (percent, rank 1..K) → PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, curve in curves.items():
        values = [float(v) for v in list(curve)[:max_rank]]
        if values and max(values) <= 1.0:
            values = [100.0 * v for v in values]
        ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_title("CMC (text-to-image)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def single_result_markdown(summary: Mapping[str, Any]) -> str:
    """One evaluation (``pedes eval``) as a small Markdown table."""
    keys = ["R1", "R5", "R10", "mAP", "mINP", "mSD"]
    lines = [f"### {summary.get('name', 'evaluation')}", "", "| direction | " + " | ".join(keys) + " |", "|" + "---|" * (len(keys) + 1)]
    for direction in ("t2i", "i2t", "t2i_rerank"):
        m = summary.get(direction)
        if m:
            label = direction
            if direction == "t2i_rerank" and summary.get("rerank_top_k"):
                label = f"t2i_rerank (stage 2, K={summary['rerank_top_k']})"
            lines.append(f"| {label} | " + " | ".join(_fmt(m, k) for k in keys) + " |")
    return "\n".join(lines) + "\n" + msd_note(summary.get("msd_order"))
