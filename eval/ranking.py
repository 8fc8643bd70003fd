"""Rank positions of each query's positives without sorting the gallery.

For a chunk of queries (``c x G`` float32 scores) the ranked list of a query is the total order

    gallery item ``a`` is ranked before ``b``  iff  ``s_a > s_b``, or ``s_a == s_b`` and ``a < b``

i.e. a stable sort by descending score, ties broken by the smaller gallery index (``-0.0 == 0.0``).

Instead of argsorting a row (``O(G log G)`` plus a ``c x G`` copy of the sorted order) only the row's
``P`` positives are sorted (``O(P log P)``); every gallery item then gets the number ``b`` of positives
ranked before it by a binary search over the sorted positives (``O(G log P)``). The ``k``-th positive
(1-based, in rank order) has ``b = k - 1``, so its 1-based rank is the number of items with
``b <= k - 1``: a per-row histogram over ``b`` and a cumulative sum. The same histogram weighted by the
normalized similarity ``clamp(s/2 + 1/2, 0, 1)`` (computed in float32, summed in float64) gives the sum
of that weight over the ranked list up to each positive, which mSD needs.

Two backends compute the same ``PositiveRanks``:

* ``"torch"`` (any device): one ``int64`` order key per element (order-preserving integer image of the
  float32 score in the high 32 bits, ``2**32 - 1 - g`` in the low ones), ``torch.searchsorted`` and
  ``torch.bincount``; about 40 bytes of temporaries per chunk element.
* ``"numba"`` (CPU tensors): the same binary search and histogram fused in one compiled loop per row
  (``eval.ranking_cpu``), parallel over rows, with ``O(c x P)`` temporaries; used by default on CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

Backend = Literal["auto", "torch", "numba"]

#: Padding key for missing positives: smaller than every real key (real keys never reach it
#: because NaN scores are rejected before ranking).
_PAD_KEY = torch.iinfo(torch.int64).min
_LOW_BITS = 32
_INDEX_LIMIT = 1 << _LOW_BITS


@dataclass(frozen=True)
class PositiveRanks:
    """Per query of a chunk, its positives in rank order (rows padded to the chunk's most positives).

    Attributes:
        counts: ``(c,)`` int64 number of positives per query (``>= 1``).
        valid: ``(c, P)`` bool, ``valid[q, k]`` iff the query has a ``(k+1)``-th positive.
        ranks: ``(c, P)`` int64 1-based rank of the ``(k+1)``-th positive (0 where not valid).
        positive_weight: ``(c, P)`` float64 normalized similarity of the ``(k+1)``-th positive.
        weight_through: ``(c, P)`` float64 sum of the normalized similarities of all items ranked at or
            before the ``(k+1)``-th positive (0 where not valid).
        weight_total: ``(c,)`` float64 sum of the normalized similarities of the whole row.
    """

    counts: torch.Tensor
    valid: torch.Tensor
    ranks: torch.Tensor
    positive_weight: torch.Tensor
    weight_through: torch.Tensor
    weight_total: torch.Tensor


def normalized_similarity(scores: torch.Tensor) -> torch.Tensor:
    """Cosine similarity mapped to ``[0, 1]``: ``clamp(s * 0.5 + 0.5, 0, 1)`` in float32 (seed 004 §3.4)."""
    return scores.mul(0.5).add_(0.5).clamp_(0.0, 1.0)


def descending_order_keys(scores: torch.Tensor, gallery_index: torch.Tensor) -> torch.Tensor:
    """Distinct ``int64`` keys, larger = ranked earlier (descending score, then ascending index).

    Args:
        scores: float32 scores without NaN.
        gallery_index: int64 gallery index of each score (broadcastable to ``scores``), ``< 2**32``.
    """
    if scores.dtype != torch.float32:
        raise TypeError(f"scores must be float32, got {scores.dtype}")
    bits = scores.contiguous().view(torch.int32).to(torch.int64)
    # IEEE-754: a non-negative float orders like its bit pattern; a negative float with magnitude bits
    # m orders like -m (so -0.0 and +0.0 both map to 0 and compare equal, as floats do).
    ordered = torch.where(bits >= 0, bits, -(bits & 0x7FFFFFFF))
    return ordered.mul_(_INDEX_LIMIT).add_((_INDEX_LIMIT - 1) - gallery_index)


def sort_positives(
    scores: torch.Tensor, positive_index: torch.Tensor, positive_count: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's positives in rank order.

    Args:
        scores: ``(c, G)`` float32.
        positive_index: ``(c, P)`` int64 gallery indices of the positives; entries at column
            ``>= positive_count[q]`` are ignored (any value in ``[0, G)``).
        positive_count: ``(c,)`` int64, ``1 <= count <= P``.

    Returns:
        ``(ranked_index, valid)``: ``(c, P)`` gallery indices of the positives in rank order, valid
        entries first, and the ``(c, P)`` validity mask.
    """
    width = positive_index.shape[1]
    valid = torch.arange(width, device=scores.device)[None, :] < positive_count[:, None]
    keys = descending_order_keys(scores.gather(1, positive_index), positive_index)
    order = keys.masked_fill_(~valid, _PAD_KEY).argsort(dim=1, descending=True)
    return positive_index.gather(1, order), valid


def _rank_torch(scores: torch.Tensor, ranked_index: torch.Tensor, valid: torch.Tensor):
    rows, gallery_size = scores.shape
    width = ranked_index.shape[1]
    device = scores.device
    keys = descending_order_keys(scores, torch.arange(gallery_size, device=device))
    positive_keys = keys.gather(1, ranked_index).masked_fill_(~valid, _PAD_KEY).flip(1)  # ascending
    # b = number of real positives ranked before the item = width - #(entries <= key); the padding
    # entries are <= every real key and real keys are distinct.
    bins = torch.searchsorted(positive_keys, keys, right=True)
    del keys
    num_bins = width + 1
    offsets = torch.arange(rows, device=device, dtype=torch.int64)[:, None] * num_bins
    flat_bins = bins.neg_().add_(width).add_(offsets).view(-1)
    counts = torch.bincount(flat_bins, minlength=rows * num_bins).view(rows, num_bins)
    weights = normalized_similarity(scores).to(torch.float64).view(-1)
    sums = torch.bincount(flat_bins, weights=weights, minlength=rows * num_bins).view(rows, num_bins)
    return counts.cumsum(dim=1)[:, :width], sums.cumsum(dim=1)[:, :width], sums.sum(dim=1)


def numba_available() -> bool:
    """Whether the compiled CPU backend can be used."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: Backend, device: torch.device) -> Literal["torch", "numba"]:
    """``auto`` = ``numba`` for CPU tensors when numba is installed, else ``torch``."""
    if backend == "auto":
        return "numba" if device.type == "cpu" and numba_available() else "torch"
    if backend == "numba" and device.type != "cpu":
        raise ValueError(f"backend 'numba' needs CPU tensors, got device {device}")
    if backend not in ("torch", "numba"):
        raise ValueError(f"unknown ranking backend {backend!r}; expected auto, torch or numba")
    return backend


def rank_positives(
    scores: torch.Tensor,
    positive_index: torch.Tensor,
    positive_count: torch.Tensor,
    backend: Literal["torch", "numba"] = "torch",
) -> PositiveRanks:
    """Ranks of each query's positives in its score-ordered gallery (see the module docstring).

    Args:
        scores: ``(c, G)`` float32 scores of ``c`` queries against the gallery, no NaN, ``G < 2**32``.
        positive_index: ``(c, P)`` int64 gallery indices of each query's positives; entries at
            column ``>= positive_count[q]`` are ignored (any value in ``[0, G)``).
        positive_count: ``(c,)`` int64 number of positives per query, ``1 <= count <= P``.
        backend: ``"torch"`` or ``"numba"`` (CPU only), see ``resolve_backend``.
    """
    if scores.shape[1] >= _INDEX_LIMIT:
        raise ValueError(f"gallery of {scores.shape[1]} items exceeds the supported {_INDEX_LIMIT - 1}")
    ranked_index, valid = sort_positives(scores, positive_index, positive_count)
    if backend == "numba":
        from eval.ranking_cpu import rank_rows

        ranks, through, total = rank_rows(scores, ranked_index, positive_count)
    else:
        ranks, through, total = _rank_torch(scores, ranked_index, valid)
    positive_weight = normalized_similarity(scores.gather(1, ranked_index)).to(torch.float64)
    return PositiveRanks(
        counts=positive_count,
        valid=valid,
        ranks=ranks.masked_fill(~valid, 0),
        positive_weight=positive_weight.masked_fill_(~valid, 0.0),
        weight_through=through.masked_fill(~valid, 0.0),
        weight_total=total,
    )
