"""Plain, slow, obviously-correct retrieval metrics: one query at a time, Python ``sorted``.

Everything is computed from the float32 values of the similarity matrix (as ``eval.metrics`` does),
in Python floats. Also holds the public mSD calculator's gallery-order variant, used to show that it
agrees with the formula only on a pre-sorted gallery.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


def to_float32_rows(similarity: Any) -> list[list[float]]:
    if isinstance(similarity, torch.Tensor):
        similarity = similarity.detach().cpu().to(torch.float32).numpy()
    return np.asarray(similarity, dtype=np.float32).astype(np.float64).tolist()


def to_id_list(ids: Any) -> list:
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    return list(np.asarray(ids).tolist())


def ranked_order(scores: list[float]) -> list[int]:
    """Gallery indices by descending score; ties by ascending gallery index."""
    return sorted(range(len(scores)), key=lambda g: (-scores[g], g))


def sd_of_list(normalized: list[float], matches: list[bool]) -> float:
    """Seed 004 §3.4 SD = PNR * ASP of a list taken in the given order (PNR: mean(s+)/mean(s-))."""
    positives = [s for s, m in zip(normalized, matches, strict=True) if m]
    negatives = [s for s, m in zip(normalized, matches, strict=True) if not m]
    mean_pos = sum(positives) / len(positives)
    if not negatives:
        pnr = 1.0
    else:
        mean_neg = sum(negatives) / len(negatives)
        if mean_neg > 0:
            pnr = 1.0 - math.exp(-(mean_pos / mean_neg))
        else:
            pnr = 1.0 if mean_pos > 0 else 0.0
    terms = []
    for j, match in enumerate(matches):
        if match:
            through_all = sum(normalized[: j + 1])
            through_pos = sum(s for s, m in zip(normalized[: j + 1], matches[: j + 1], strict=True) if m)
            terms.append(through_pos / through_all if through_all > 0 else 0.0)
    asp = sum(terms) / len(terms)
    return pnr * asp


def reference_query(scores: list[float], gallery_ids: list, query_id: Any) -> dict[str, float] | None:
    """Metrics of one query (fractions, not percent); ``None`` when it has no positive."""
    order = ranked_order(scores)
    matches = [gallery_ids[g] == query_id for g in order]
    if not any(matches):
        return None
    positive_ranks = [rank for rank, match in enumerate(matches, start=1) if match]
    num_pos = len(positive_ranks)
    ap = sum((k + 1) / rank for k, rank in enumerate(positive_ranks)) / num_pos
    inp = num_pos / positive_ranks[-1]
    normalized = [min(max(scores[g] / 2 + 0.5, 0.0), 1.0) for g in order]
    return {"first": positive_ranks[0], "AP": ap, "INP": inp, "SD": sd_of_list(normalized, matches)}


def reference_metrics(
    similarity: Any, query_ids: Any, gallery_ids: Any, ks=(1, 5, 10), cmc_max_rank: int = 50
) -> dict[str, Any]:
    rows = to_float32_rows(similarity)
    qids, gids = to_id_list(query_ids), to_id_list(gallery_ids)
    per_query = [reference_query(row, gids, qid) for row, qid in zip(rows, qids, strict=True)]
    evaluated = [m for m in per_query if m is not None]
    n = len(evaluated)

    def pct(values: list[float]) -> float:
        return 100.0 * sum(values) / n if n else math.nan

    out: dict[str, Any] = {f"R{k}": pct([float(m["first"] <= k) for m in evaluated]) for k in ks}
    out["cmc"] = [pct([float(m["first"] <= r) for m in evaluated]) for r in range(1, cmc_max_rank + 1)]
    out["mAP"] = pct([m["AP"] for m in evaluated])
    out["mINP"] = pct([m["INP"] for m in evaluated])
    out["mSD"] = pct([m["SD"] for m in evaluated])
    out["num_queries"] = len(rows)
    out["num_evaluated"] = n
    out["num_skipped"] = len(rows) - n
    return out


def public_gallery_order_sd(scores: list[float], gallery_ids: list, query_id: Any) -> float:
    """The public mSD calculator's reading: the SD formula with cumulative sums in *gallery* order.

    Its cumulative sums run over the gallery as stored instead of over the ranked list, i.e. it
    evaluates the formula on the unsorted list; identical to ``reference_query(...)["SD"]`` exactly
    when the gallery is already sorted by descending similarity.
    """
    normalized = [min(max(s / 2 + 0.5, 0.0), 1.0) for s in scores]
    matches = [g == query_id for g in gallery_ids]
    return sd_of_list(normalized, matches)
