"""Plain, slow, obviously-correct retrieval metrics: one query at a time, Python ``sorted``.

Everything is computed from the float32 values of the similarity matrix (as ``eval.metrics`` does),
in Python floats. Also holds an independent transcription of the public UFineBench mSD calculator
(``public_calculator_sd``), the reference of ``retrieval_metrics(..., msd_order="gallery")``.
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


def public_calculator_sd(scores: list[float], gallery_ids: list, query_id: Any) -> float:
    """SD of one query as the public UFineBench calculator (``mSD_Calculator.py``, ``mSD_rank``) computes it.

    An independent, per-query transcription of what that script does, step by step:
    ``s = sim / 2 + 0.5`` over the row *as stored*; ``indices`` = argsort descending; ``matches[i]`` =
    whether the item *ranked* ``i`` is a positive; the positive weights are ``s[i] * matches[i]``,
    i.e. the stored row masked at the ranked positions; PNR from the positive/negative means of those
    sums; ASP from the running sums of the stored row and of the masked row at each ``i`` with
    ``matches[i]``. Agrees with the seed 004 formula only on a gallery sorted by descending score.
    (No clamping: the script has none; callers pass cosines in ``[-1, 1]``.)
    """
    normalized = [s / 2 + 0.5 for s in scores]
    ranked = ranked_order(scores)
    matches = [gallery_ids[g] == query_id for g in ranked]  # by rank position
    masked = [normalized[i] if matches[i] else 0.0 for i in range(len(scores))]  # stored row × rank mask
    num_rel = sum(matches)
    positive_sum = sum(masked)
    negative_sum = sum(normalized) - positive_sum
    num_neg = len(scores) - num_rel
    pnr = 1.0 - math.exp(-((positive_sum / num_rel) / (negative_sum / num_neg))) if num_neg else 1.0
    terms = []
    running_all = running_pos = 0.0
    for i in range(len(scores)):
        running_all += normalized[i]
        running_pos += masked[i]
        if matches[i]:
            terms.append(running_pos / running_all)
    return pnr * sum(terms) / num_rel
