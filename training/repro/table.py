"""Tables of the miniature reproduction in seed 002's layout (Table 1: direct transfer, Table 4: fine-tuning),
mean ± std over seeds, and the verdict on each of the papers' directions (:data:`training.repro.arms.DIRECTIONS`).

A direction *holds* when the mean R1 of the better arm exceeds the worse arm's; it is called *clear* when
the gap is larger than the two arms' pooled standard deviation (with one seed: no std, "single seed"). When
the arm that should win is not above chance — its mean R1 minus the setting's chance R1 is at most its std
over seeds (with one seed: at most 0) — the comparison says nothing about the claim and the verdict is
*not informative (at chance)*: two models that learned nothing tie or differ by luck.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.repro.arms import ARMS_BY_NAME, DIRECTIONS, Arm

METRICS = ("R1", "R5", "R10", "mAP")


def aggregate(records: Sequence[dict[str, Any]], setting: str) -> dict[str, dict[str, dict[str, float]]]:
    """``{arm: {metric: {"mean", "std", "n"}}}`` of ``setting`` (``direct``/``finetune``/``clothes_change``)."""
    by_arm: dict[str, list[dict[str, float]]] = {}
    for rec in records:
        if setting in rec:
            by_arm.setdefault(rec["arm"], []).append(rec[setting])
    out: dict[str, dict[str, dict[str, float]]] = {}
    for arm, values in by_arm.items():
        out[arm] = {}
        for metric in METRICS:
            xs = np.array([v[metric] for v in values], dtype=float)
            out[arm][metric] = {"mean": float(xs.mean()), "std": float(xs.std(ddof=1)) if len(xs) > 1 else 0.0,
                                "n": len(xs)}
    return out


def format_stat(stat: dict[str, float] | None) -> str:
    """``mean ± std`` over seeds (the mean alone with one seed; ``—`` when not run)."""
    if stat is None:
        return "—"
    return f"{stat['mean']:.1f} ± {stat['std']:.1f}" if stat["n"] > 1 else f"{stat['mean']:.1f}"


def directions(stats: dict[str, dict[str, dict[str, dict[str, float]]]],
               chance_r1: dict[str, float | None] | None = None) -> list[dict[str, Any]]:
    """Each paper direction with both arms' R1, the gap, and whether it holds here; ``chance_r1``: the chance
    Rank-1 of each setting (``direct``/``finetune``: the target test split, ``clothes_change``: its split)."""
    chance_r1 = chance_r1 or {}
    verdicts = []
    for d in DIRECTIONS:
        table = stats.get(d.setting, {})
        better, worse = table.get(d.better, {}).get("R1"), table.get(d.worse, {}).get("R1")
        if better is None or worse is None:
            verdicts.append({"claim": d.claim, "source": d.source, "setting": d.setting, "status": "not run"})
            continue
        gap = better["mean"] - worse["mean"]
        pooled = math.sqrt((better["std"] ** 2 + worse["std"] ** 2) / 2)
        n = min(better["n"], worse["n"])
        chance = chance_r1.get(d.setting)
        if chance is not None and better["mean"] - chance <= better["std"]:
            status = "not informative (at chance)"
        elif gap <= 0:
            status = "does not hold"
        elif n < 2:
            status = "holds (single seed)"
        else:
            status = "holds (clear)" if gap > pooled else "holds (within noise)"
        verdicts.append({"claim": d.claim, "source": d.source, "setting": d.setting, "better": d.better,
                         "worse": d.worse, "better_R1": better["mean"], "worse_R1": worse["mean"], "gap_R1": gap,
                         "pooled_std": pooled, "seeds": n, "chance_R1": chance, "status": status})
    return verdicts


def caption_quality(corpora: dict[str, Any]) -> str:
    """``clean: static 77.1 %, dynamic 76.6 %; noisy: ...`` from the corpora's ``attribute_accuracy``
    (:func:`caption_gen.captioner.corpus_accuracy.corpus_attribute_accuracy`); empty when not measured."""
    parts = []
    for corpus in ("clean", "noisy"):
        scored = (corpora.get(corpus) or {}).get("attribute_accuracy") or {}
        kinds = ", ".join(f"{kind} {v['mean'] * 100:.1f} %" for kind, v in scored.items() if v.get("mean") is not None)
        if kinds:
            parts.append(f"{corpus}: {kinds}")
    return "; ".join(parts)


def markdown(stats: dict[str, Any], verdicts: list[dict[str, Any]], arms: Sequence[Arm],
             captioners: dict[str, list[str]], chance_r1: float | None, meta: dict[str, Any]) -> str:
    """``table.md``: the ablation table (rows = arms, direct transfer and fine-tuned columns) + directions."""
    lines = ["# Miniature LUPerson-MLLM reproduction", ""]
    lines.append(f"Seeds: {meta.get('seeds')}; target test split: {meta.get('target_test_ids')} identities, "
                 f"{meta.get('target_test_queries')} queries; text-to-image, in %, mean ± std over seeds."
                 + (f" Chance R1 ≈ {chance_r1:.1f}." if chance_r1 is not None else ""))
    lines.append("")
    used = "; ".join(f"{corpus}: {', '.join(names)}" for corpus in ("clean", "noisy")
                     if (names := captioners.get(corpus)))
    lines.append("Columns T^s/T^d: static/dynamic captions of the captioners of the arm's corpus"
                 + (f" ({used})." if used else "."))
    quality = caption_quality(meta.get("corpora") or {})
    if quality:
        lines += ["", f"Attribute accuracy of the corpora's accepted captions against the source images' attributes "
                      f"(mean over attribute groups): {quality}."]
    lines.append("")
    head = "| Method | T^s | T^d | NAM | corpus | " + " | ".join(f"DT {m}" for m in METRICS) + " | " + \
        " | ".join(f"FT {m}" for m in METRICS) + " |"
    lines += [head, "|" + "---|" * (5 + 2 * len(METRICS))]
    for arm in arms:
        ts = "✓" if "static" in arm.kinds else ""
        td = "✓" if "dynamic" in arm.kinds else ""
        nam = "✓" if arm.masking == "nam" else ""
        direct = stats.get("direct", {}).get(arm.name, {})
        ft = stats.get("finetune", {}).get(arm.name, {})
        lines.append(f"| {arm.label} | {ts} | {td} | {nam} | {arm.corpus} | "
                     + " | ".join(format_stat(direct.get(m)) for m in METRICS) + " | "
                     + " | ".join(format_stat(ft.get(m)) for m in METRICS) + " |")
    cc = stats.get("clothes_change", {})
    if cc:
        cc_chance = next((v["chance_R1"] for v in verdicts if v.get("setting") == "clothes_change"
                          and v.get("chance_R1") is not None), None)
        lines += ["", "## Clothes change (seed 000): queries describe one outfit, positives wear another", "",
                  *([f"Chance R1 ≈ {cc_chance:.1f}.", ""] if cc_chance is not None else []),
                  "| Model | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
        for name, label in (("plain", "Plain dual encoder"), ("bdam", "BDAM (identity feature)")):
            if name in cc:
                lines.append(f"| {label} | " + " | ".join(format_stat(cc[name].get(m)) for m in METRICS) + " |")
    lines += ["", "## Directions of the papers", "", "| claim | paper | here (R1) | verdict |", "|---|---|---|---|"]
    for v in verdicts:
        here = (f"{v['better_R1']:.1f} vs {v['worse_R1']:.1f} (gap {v['gap_R1']:+.1f}, pooled std "
                f"{v['pooled_std']:.1f})") if "gap_R1" in v else "—"
        lines.append(f"| {v['claim']} | {v['source']} | {here} | {v['status']} |")
    return "\n".join(lines) + "\n"


def plot(stats: dict[str, Any], arms: Sequence[Arm], path: Path) -> Path:
    """Grouped bars of R1 (direct transfer and fine-tuned) per arm, with std error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [a.name for a in arms]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(names)), 3.6))
    for offset, setting in ((-0.2, "direct"), (0.2, "finetune")):
        table = stats.get(setting, {})
        means = [table.get(n, {}).get("R1", {}).get("mean", np.nan) for n in names]
        stds = [table.get(n, {}).get("R1", {}).get("std", 0.0) for n in names]
        ax.bar(x + offset, means, 0.4, yerr=stds, label="direct transfer" if setting == "direct" else "fine-tuned")
    ax.set_xticks(x, [ARMS_BY_NAME[n].label for n in names], rotation=20, ha="right", fontsize=7)
    ax.set_ylabel("text-to-image R1 (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_outputs(out: Path, records: list[dict[str, Any]], arms: Sequence[Arm], captioners: dict[str, list[str]],
                  chance_r1: float | None, meta: dict[str, Any]) -> dict[str, Any]:
    """``table.md``, ``results.json`` and ``r1.png`` under ``out``; returns the results payload."""
    stats = {s: aggregate(records, s) for s in ("direct", "finetune", "clothes_change")}
    cc_chance = [r["clothes_change"]["chance_R1"] for r in records if "chance_R1" in r.get("clothes_change", {})]
    verdicts = directions(stats, {"direct": chance_r1, "finetune": chance_r1,
                                  "clothes_change": float(np.mean(cc_chance)) if cc_chance else None})
    payload = {"meta": meta, "chance_r1": chance_r1, "captioners": captioners, "runs": records, "stats": stats,
               "directions": verdicts}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=str))
    (out / "table.md").write_text(markdown(stats, verdicts, arms, captioners, chance_r1, meta))
    plot(stats, arms, out / "r1.png")
    return payload
