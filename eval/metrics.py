r"""Retrieval metrics from a query x gallery similarity matrix: CMC / Rank-k, mAP, mINP and mSD.

Conventions (all metrics in percent):

* Queries are the rows, the gallery the columns; with text queries and image gallery this is
  text-to-image retrieval, ``evaluate_both_directions`` adds image-to-text on the transpose.
* A gallery item is a *positive* of a query when their ids are equal. Queries without any positive in
  the gallery are skipped and counted (``num_skipped``); every mean is over the evaluated queries.
* Ranked list: stable sort by descending similarity, ties broken by the smaller gallery index
  (``eval.ranking``). Ranks are 1-based. Inputs (float16/float32/float64, torch or numpy, CPU or
  CUDA) are converted chunk by chunk to float32; ranking uses those float32 scores.
* ``R{k}`` = share of queries whose first positive has rank ``<= k`` (CMC at ``k``); ``cmc[r-1]`` the
  same for every ``r = 1..cmc_max_rank``.
* AP of a query with positives at ranks :math:`j_1 < \dots < j_{n^+}`:
  :math:`\frac{1}{n^+}\sum_k k / j_k`; ``mAP`` its mean.
* INP (Ye et al., "Deep Learning for Person Re-identification: A Survey and Outlook", mINP):
  :math:`\mathrm{INP} = n^+ / j_{n^+}` -- number of positives over the rank of the hardest (last)
  positive; ``mINP`` its mean.
* SD, UFine6926 / seed 004 §3.4, over the query's *ranked* list :math:`\{s_i\}_{i=1}^n`, with cosine
  similarities mapped to :math:`[0, 1]` by :math:`s \mapsto s/2 + 1/2`:

  .. math::

      x = \frac{\operatorname{mean}(s^+)}{\operatorname{mean}(s^-)},\qquad
      \mathrm{PNR} = 1 - e^{-k x}\ (k = 1),\qquad
      \mathrm{ASP} = \frac{1}{n^+}\sum_{k=1}^{n^+}
          \frac{\sum_{i=1}^{j_k} s_i^+}{\sum_{i=1}^{j_k} s_i},\qquad
      \mathrm{SD} = \mathrm{PNR}\cdot\mathrm{ASP}

  where :math:`\sum_{i\le j_k} s_i^+` sums the positives ranked at or before the ``k``-th positive and
  :math:`\sum_{i\le j_k} s_i` all items ranked there (Eq. 2); ``mSD`` is the mean SD.

  Reading of the paper, where it is silent (each tested in ``tests/eval/test_metrics.py``):
  "average similarity ratio between matched and unmatched samples" is read as the ratio of the mean
  positive to the mean negative normalized similarity. Without negatives, or with mean negative 0 and
  a positive mean > 0, :math:`x = \infty` and PNR = 1; with mean positive 0, PNR = 0. A 0/0 term of
  ASP (every item up to the positive has normalized similarity 0) counts 0. The cumulative sums run
  over the ranked list, as the formula says (``msd_order="ranked"``, the default).

  ``msd_order="gallery"`` reproduces the public UFineBench calculator (``mSD_Calculator.py``,
  ``mSD_rank``) for comparison with published UFineBench tables: it takes the positive mask at the
  *ranked* positions ``j_k`` but multiplies it with the similarity row in *gallery* (storage) order,
  so every "positive" weight, the running sums and the PNR means are read from the unsorted row:
  :math:`s^+_{(k)} = s_{j_k}` (the gallery item stored at index ``j_k - 1``, 0-based),
  :math:`\sum_{i\le j_k} s_i` over the first ``j_k`` stored items. Both orders agree only when the
  gallery is already sorted by descending similarity; on random cosines with planted positives
  (R1 ~ 80 %) they differ by 7-10 points, on uniform random scores by < 1 point (tested against an
  independent transcription of the calculator). Ties: this module's ranking
  (stable, smaller gallery index first); the calculator's ``torch.argsort`` is not stable.
  mSD needs cosine similarities: a value outside ``[-1, 1]`` by more than ``COSINE_TOLERANCE``
  raises ``InputError`` (pass ``compute_msd=False`` for other scores); values within the tolerance
  are clamped to ``[0, 1]`` after the mapping.

Memory: queries are processed in chunks of ``chunk_size`` rows and no sorted copy of the matrix is
made. Beyond the input, the ``"torch"`` backend needs about 40 bytes per chunk element, the compiled
``"numba"`` CPU backend only a float32 copy of the chunk when the input is not float32 (plus
``O(chunk_size x P)`` for ``P`` positives per query).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from eval.ranking import Backend, PositiveRanks, normalized_similarity, rank_positives, resolve_backend
from pedes_core.errors import InputError

#: Slack on the cosine range for mSD (float16 cosines of normalized vectors can exceed 1 slightly).
COSINE_TOLERANCE = 1e-2
#: Default chunk size target, in matrix elements per chunk (rows = this // gallery size).
CHUNK_ELEMENTS = 1 << 22
DEFAULT_KS = (1, 5, 10)
DEFAULT_CMC_MAX_RANK = 50
MsdOrder = Literal["ranked", "gallery"]
MSD_ORDERS: tuple[str, ...] = ("ranked", "gallery")


def _as_tensor(similarity: Any) -> torch.Tensor:
    if isinstance(similarity, torch.Tensor):
        tensor = similarity.detach()
    elif isinstance(similarity, np.ndarray):
        if similarity.dtype.kind != "f":
            raise InputError(f"similarity: expected a floating-point matrix, got dtype {similarity.dtype}")
        tensor = torch.from_numpy(similarity)
    else:
        raise InputError(
            f"similarity: expected a torch.Tensor or numpy.ndarray, got {type(similarity).__name__}"
        )
    if not tensor.is_floating_point():
        raise InputError(f"similarity: expected a floating-point matrix, got dtype {tensor.dtype}")
    if tensor.ndim != 2:
        raise InputError(
            f"similarity: expected a 2-D (queries x gallery) matrix, got shape {tuple(tensor.shape)}"
        )
    return tensor


def _ids_to_numpy(ids: Any, name: str) -> np.ndarray:
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    array = np.asarray(ids)
    if array.ndim != 1:
        raise InputError(f"{name}: expected a 1-D id vector, got shape {array.shape}")
    if array.dtype.kind == "f":
        raise InputError(f"{name}: ids must be integers or strings, got dtype {array.dtype}")
    return array


def _encode_ids(query_ids: Any, gallery_ids: Any) -> tuple[np.ndarray, np.ndarray]:
    """Map both id vectors to shared int64 codes ``0..U-1``."""
    query = _ids_to_numpy(query_ids, "query_ids")
    gallery = _ids_to_numpy(gallery_ids, "gallery_ids")
    if query.size and gallery.size and (query.dtype.kind in "US") != (gallery.dtype.kind in "US"):
        raise InputError(f"query_ids ({query.dtype}) and gallery_ids ({gallery.dtype}) are not comparable")
    try:
        _, codes = np.unique(np.concatenate([query, gallery]), return_inverse=True)
    except TypeError as exc:
        raise InputError(f"query_ids/gallery_ids: ids are not comparable ({exc})") from exc
    codes = codes.reshape(-1).astype(np.int64)
    return codes[: query.size], codes[query.size :]


def _check_chunk(chunk: torch.Tensor, row_offset: int, compute_msd: bool) -> None:
    if not chunk.numel():
        return
    low, high = (float(value) for value in torch.aminmax(chunk))  # NaN propagates
    if math.isnan(low) or math.isnan(high):
        bad = chunk.isnan().nonzero()[0].tolist()
        raise InputError(f"similarity: NaN at (query {bad[0] + row_offset}, gallery {bad[1]})")
    if compute_msd:
        if low < -1.0 - COSINE_TOLERANCE or high > 1.0 + COSINE_TOLERANCE:
            raise InputError(
                f"similarity: mSD needs cosine similarities in [-1, 1], got values in [{low:.4g}, {high:.4g}] "
                "(pass compute_msd=False to skip mSD)"
            )


def _similarity_distribution(ranked: PositiveRanks, gallery_size: int) -> torch.Tensor:
    """Per-query SD = PNR * ASP (float64) from a ``PositiveRanks`` computed with normalized weights."""
    counts = ranked.counts.to(torch.float64)
    last = (ranked.counts - 1).clamp(min=0)[:, None]
    # ASP (Eq. 2): running positive sum over running total at each positive; 0/0 -> 0.
    positive_through = ranked.positive_weight.cumsum(dim=1)
    through = ranked.weight_through
    ratio = torch.where(
        through > 0, positive_through / through.clamp(min=torch.finfo(torch.float64).tiny), 0.0
    )
    asp = ratio.masked_fill(~ranked.valid, 0.0).sum(dim=1) / counts
    # PNR (Eq. 1) with x = mean(s+) / mean(s-).
    positive_sum = positive_through.gather(1, last)[:, 0]
    negative_count = gallery_size - ranked.counts
    negative_mean = (ranked.weight_total - positive_sum) / negative_count.clamp(min=1).to(torch.float64)
    positive_mean = positive_sum / counts
    x = positive_mean / negative_mean.clamp(min=torch.finfo(torch.float64).tiny)
    pnr = torch.where(negative_mean > 0, 1.0 - torch.exp(-x), (positive_mean > 0).to(torch.float64))
    pnr = torch.where(negative_count == 0, 1.0, pnr)
    return pnr * asp


def _gallery_order_ranks(chunk: torch.Tensor, ranked: PositiveRanks) -> PositiveRanks:
    """The public calculator's weights: ranked positions ``j_k`` read on the row in gallery order."""
    weights = normalized_similarity(chunk).to(torch.float64)
    at = (ranked.ranks - 1).clamp(min=0)
    through = weights.cumsum(dim=1).gather(1, at)
    return PositiveRanks(
        counts=ranked.counts,
        valid=ranked.valid,
        ranks=ranked.ranks,
        positive_weight=weights.gather(1, at).masked_fill_(~ranked.valid, 0.0),
        weight_through=through.masked_fill_(~ranked.valid, 0.0),
        weight_total=weights.sum(dim=1),
    )


def _percent(values: np.ndarray) -> float:
    return float(values.mean() * 100.0) if values.size else math.nan


def retrieval_metrics(
    similarity: Any,
    query_ids: Any,
    gallery_ids: Any,
    *,
    chunk_size: int | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    cmc_max_rank: int = DEFAULT_CMC_MAX_RANK,
    compute_msd: bool = True,
    backend: Backend = "auto",
    msd_order: MsdOrder = "ranked",
) -> dict[str, Any]:
    """Rank-k, mAP, mINP and mSD (percent) of a query x gallery similarity matrix.

    Args:
        similarity: ``(Q, G)`` torch tensor (CPU or CUDA; computed on its device) or numpy array,
            float16/32/64; larger = more similar. Cosine similarities when ``compute_msd``.
        query_ids: ``(Q,)`` identity of each query (ints or strings; torch, numpy or a sequence).
        gallery_ids: ``(G,)`` identity of each gallery item.
        chunk_size: queries per chunk (memory ``O(chunk_size x G)``); default ``CHUNK_ELEMENTS // G``.
        ks: ranks reported as ``R{k}``.
        cmc_max_rank: length of the returned CMC curve.
        compute_msd: compute mSD (needs cosine similarities); ``mSD`` is NaN when False.
        backend: ranking backend (``eval.ranking``): ``"auto"`` (compiled ``"numba"`` loop for CPU
            tensors when numba is installed, else ``"torch"``), ``"torch"`` or ``"numba"``.
        msd_order: ``"ranked"`` (seed 004 §3.4 Eq. 2 over the ranked list) or ``"gallery"`` (the
            public UFineBench calculator's sums in gallery order; see the module docstring).

    Returns:
        ``{"R1", "R5", "R10" (one per ``ks``), "mAP", "mINP", "mSD"}`` as percent floats (NaN when no
        query has a positive), ``"cmc"``: list of ``cmc_max_rank`` percent floats (``cmc[r-1]`` =
        share of queries with a positive in the top ``r``), and the counts ``"num_queries"``,
        ``"num_gallery"``, ``"num_evaluated"``, ``"num_skipped"`` (queries without positives).

    Raises:
        InputError: wrong types/shapes, NaN similarities, non-cosine values with mSD, bad ``ks``.
    """
    matrix = _as_tensor(similarity)
    num_queries, gallery_size = matrix.shape
    query_codes_np, gallery_codes_np = _encode_ids(query_ids, gallery_ids)
    if query_codes_np.size != num_queries:
        raise InputError(f"query_ids: {query_codes_np.size} ids for {num_queries} similarity rows")
    if gallery_codes_np.size != gallery_size:
        raise InputError(f"gallery_ids: {gallery_codes_np.size} ids for {gallery_size} similarity columns")
    ks = tuple(ks)
    if not ks or any(not isinstance(k, int | np.integer) or k < 1 for k in ks):
        raise InputError(f"ks: expected positive integer ranks, got {ks!r}")
    if cmc_max_rank < 1:
        raise InputError(f"cmc_max_rank: expected >= 1, got {cmc_max_rank}")
    if chunk_size is None:
        chunk_size = max(1, CHUNK_ELEMENTS // max(gallery_size, 1))
    if chunk_size < 1:
        raise InputError(f"chunk_size: expected >= 1, got {chunk_size}")
    if msd_order not in MSD_ORDERS:
        raise InputError(f"msd_order: expected one of {MSD_ORDERS}, got {msd_order!r}")

    device = matrix.device
    try:
        resolved = resolve_backend(backend, device)
    except ValueError as exc:
        raise InputError(f"backend: {exc}") from exc
    query_codes = torch.from_numpy(query_codes_np).to(device)
    gallery_codes = torch.from_numpy(gallery_codes_np).to(device)
    num_codes = int(max(query_codes_np.max(initial=-1), gallery_codes_np.max(initial=-1))) + 1
    # Gallery grouped by identity: the positives of id u are gallery_order[start[u] : start[u] + count[u]].
    gallery_order = torch.argsort(gallery_codes, stable=True)
    id_count = torch.bincount(gallery_codes, minlength=num_codes)
    id_start = id_count.cumsum(0) - id_count

    first_ranks: list[torch.Tensor] = []
    average_precision: list[torch.Tensor] = []
    inverse_negative_penalty: list[torch.Tensor] = []
    similarity_distribution: list[torch.Tensor] = []
    num_skipped = 0
    for begin in range(0, num_queries, chunk_size):
        chunk = matrix[begin : begin + chunk_size].to(torch.float32)
        _check_chunk(chunk, begin, compute_msd)
        codes = query_codes[begin : begin + chunk_size]
        counts = id_count[codes]
        evaluated = counts > 0
        num_skipped += int((~evaluated).sum())
        if not bool(evaluated.any()):
            continue
        if not bool(evaluated.all()):
            chunk, codes, counts = chunk[evaluated], codes[evaluated], counts[evaluated]
        width = int(counts.max())
        columns = torch.arange(width, device=device)
        positive_index = gallery_order[(id_start[codes][:, None] + columns).clamp(max=gallery_size - 1)]
        ranked = rank_positives(chunk, positive_index, counts, resolved)
        if compute_msd and msd_order == "gallery":
            sd_input = _gallery_order_ranks(chunk, ranked)
        else:
            sd_input = ranked
        del chunk
        ranks64 = ranked.ranks.to(torch.float64)
        counts64 = counts.to(torch.float64)
        position = (columns + 1).to(torch.float64)[None, :]
        precision = torch.where(ranked.valid, position / ranks64.clamp(min=1.0), 0.0)
        first_ranks.append(ranked.ranks[:, 0].cpu())
        average_precision.append((precision.sum(dim=1) / counts64).cpu())
        hardest = ranks64.gather(1, (counts - 1)[:, None])[:, 0]
        inverse_negative_penalty.append((counts64 / hardest).cpu())
        if compute_msd:
            similarity_distribution.append(_similarity_distribution(sd_input, gallery_size).cpu())

    first = torch.cat(first_ranks).numpy() if first_ranks else np.zeros(0, dtype=np.int64)
    num_evaluated = int(first.size)
    max_rank = max(cmc_max_rank, max(ks))
    hits = np.bincount(np.minimum(first, max_rank + 1), minlength=max_rank + 2)[1 : max_rank + 1]
    cmc = (np.cumsum(hits) / num_evaluated * 100.0) if num_evaluated else np.full(max_rank, math.nan)
    result: dict[str, Any] = {f"R{k}": float(cmc[k - 1]) for k in ks}
    result["mAP"] = _percent(torch.cat(average_precision).numpy()) if average_precision else math.nan
    result["mINP"] = (
        _percent(torch.cat(inverse_negative_penalty).numpy()) if inverse_negative_penalty else math.nan
    )
    result["mSD"] = (
        _percent(torch.cat(similarity_distribution).numpy()) if similarity_distribution else math.nan
    )
    result["cmc"] = [float(value) for value in cmc[:cmc_max_rank]]
    result["num_queries"] = num_queries
    result["num_gallery"] = gallery_size
    result["num_evaluated"] = num_evaluated
    result["num_skipped"] = num_skipped
    return result


def chance_rank1(query_ids: Any, gallery_ids: Any) -> float:
    """Expected Rank-1 (%) of a random ranking: the mean over queries of the share of the gallery that has the
    query's identity."""
    gallery = _ids_to_numpy(gallery_ids, "gallery_ids")
    queries = _ids_to_numpy(query_ids, "query_ids")
    labels, counts = np.unique(gallery, return_counts=True)
    pos = np.searchsorted(labels, queries).clip(max=len(labels) - 1)
    hits = np.where(labels[pos] == queries, counts[pos], 0)
    return float(hits.mean() / len(gallery)) * 100


def cmc_curve(
    similarity: Any, query_ids: Any, gallery_ids: Any, max_rank: int = DEFAULT_CMC_MAX_RANK, **kwargs: Any
) -> np.ndarray:
    """CMC curve in percent, ``curve[r-1]`` = share of queries with a positive in the top ``r``."""
    metrics = retrieval_metrics(similarity, query_ids, gallery_ids, cmc_max_rank=max_rank, **kwargs)
    return np.asarray(metrics["cmc"], dtype=np.float64)


def evaluate_both_directions(
    sim_t2i: Any, text_ids: Any, image_ids: Any, **kwargs: Any
) -> dict[str, dict[str, Any]]:
    """Text-to-image on ``sim_t2i`` (texts x images) and image-to-text on its transpose.

    Keyword arguments are passed to ``retrieval_metrics``.
    """
    matrix = _as_tensor(sim_t2i)
    return {
        "t2i": retrieval_metrics(matrix, text_ids, image_ids, **kwargs),
        "i2t": retrieval_metrics(matrix.T, image_ids, text_ids, **kwargs),
    }
