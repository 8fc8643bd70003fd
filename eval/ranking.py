"""Rank positions of each query's positives without sorting the gallery.

For a chunk of queries (``c x G`` scores) the ranked list of a query is defined by the total order

    gallery item ``a`` is ranked before ``b``  iff  ``s_a > s_b``, or ``s_a == s_b`` and ``a < b``

i.e. a stable sort by descending score, ties broken by the smaller gallery index (``-0.0 == 0.0``).
That order is encoded in one ``int64`` key per (query, gallery item): the order-preserving integer image
of the float32 score in the high 32 bits and ``2**32 - 1 - g`` in the low 32 bits, so every key of a row
is distinct and "ranked earlier" is "larger key".

Instead of argsorting a row (``O(G log G)`` and a ``c x G`` index copy of the sorted order) only the
row's ``P`` positives are sorted (``O(P log P)``); every gallery item is then assigned the number ``b``
of positives ranked before it by a binary search over the ``P`` positive keys (``O(G log P)``). The
``k``-th positive (1-based, in rank order) has ``b = k - 1``, so its 1-based rank is the number of items
with ``b <= k - 1``: a per-row histogram over ``b`` followed by a cumulative sum. The same histogram
weighted by any per-item value (here the normalized similarity needed by mSD) gives the sum of that
value over the ranked list up to each positive. Memory is ``O(c x G)`` for the keys and bins.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Padding key for missing positives: smaller than every real key (real keys never reach it
#: because NaN scores are rejected before ranking).
_PAD_KEY = torch.iinfo(torch.int64).min
_LOW_BITS = 32
_INDEX_LIMIT = 1 << _LOW_BITS


@dataclass(frozen=True)
class PositiveRanks:
    """Per query of a chunk, its positives in rank order (rows padded to the chunk's most positives).

    Attributes:
        counts: ``(c,)`` number of positives per query.
        valid: ``(c, P)`` bool, ``valid[q, k]`` iff the query has a ``(k+1)``-th positive.
        ranks: ``(c, P)`` int64 1-based rank of the ``(k+1)``-th positive (0 where not valid).
        positive_weight: ``(c, P)`` float64 weight of the ``(k+1)``-th positive (0 where not valid).
        weight_through: ``(c, P)`` float64 sum of the weights of all items ranked at or before the
            ``(k+1)``-th positive (``None`` when no weights were given).
        weight_total: ``(c,)`` float64 sum of all weights of the row (``None`` without weights).
    """

    counts: torch.Tensor
    valid: torch.Tensor
    ranks: torch.Tensor
    positive_weight: torch.Tensor | None
    weight_through: torch.Tensor | None
    weight_total: torch.Tensor | None


def descending_order_keys(scores: torch.Tensor) -> torch.Tensor:
    """Distinct ``int64`` keys, larger = ranked earlier (descending score, then ascending index).

    Args:
        scores: ``(c, G)`` float32 scores without NaN; ``G < 2**32``.
    """
    if scores.dtype != torch.float32:
        raise TypeError(f"scores must be float32, got {scores.dtype}")
    gallery_size = scores.shape[1]
    if gallery_size >= _INDEX_LIMIT:
        raise ValueError(f"gallery of {gallery_size} items exceeds the supported {_INDEX_LIMIT - 1}")
    # ``+ 0.0`` turns -0.0 into +0.0 so that both compare equal, as floats do.
    bits = (scores + 0.0).contiguous().view(torch.int32)
    # IEEE-754 trick: non-negative floats already order like their bit patterns; negative floats order
    # in reverse, so flip their 31 magnitude bits.
    ordered = torch.where(bits >= 0, bits, bits ^ 0x7FFFFFFF).to(torch.int64)
    low = (_INDEX_LIMIT - 1) - torch.arange(gallery_size, device=scores.device, dtype=torch.int64)
    return ordered.mul_(_INDEX_LIMIT).add_(low)


def rank_positives(
    scores: torch.Tensor,
    positive_index: torch.Tensor,
    positive_count: torch.Tensor,
    weights: torch.Tensor | None = None,
) -> PositiveRanks:
    """Ranks of each query's positives in its score-ordered gallery (see the module docstring).

    Args:
        scores: ``(c, G)`` float32 scores of ``c`` queries against the gallery, no NaN.
        positive_index: ``(c, P)`` int64 gallery indices of each query's positives; entries at
            column ``>= positive_count[q]`` are ignored (any value in ``[0, G)``).
        positive_count: ``(c,)`` int64 number of positives per query, ``<= P``.
        weights: optional ``(c, G)`` per-item weights whose running sum along the ranked list is
            returned at every positive (accumulated in float64).
    """
    rows, gallery_size = scores.shape
    width = positive_index.shape[1]
    device = scores.device
    valid = torch.arange(width, device=device)[None, :] < positive_count[:, None]
    keys = descending_order_keys(scores)
    positive_keys = keys.gather(1, positive_index).masked_fill_(~valid, _PAD_KEY)
    ascending_keys, ascending_order = positive_keys.sort(dim=1)  # padding first
    # b = number of real positives ranked before the item = width - #(entries <= key); the padding
    # entries are <= every real key, real keys are distinct.
    bins = torch.searchsorted(ascending_keys, keys, right=True)
    del keys
    bins.neg_().add_(width)
    num_bins = width + 1
    bins.add_(torch.arange(rows, device=device, dtype=torch.int64)[:, None] * num_bins)
    flat_bins = bins.view(-1)
    counts = torch.bincount(flat_bins, minlength=rows * num_bins).view(rows, num_bins)
    ranks = counts.cumsum(dim=1)[:, :width].masked_fill_(~valid, 0)
    # rank order = descending keys = ascending order reversed; valid entries come first.
    rank_order = ascending_order.flip(1)
    positive_weight = weight_through = weight_total = None
    if weights is not None:
        weights64 = weights.to(torch.float64)
        sums = torch.bincount(flat_bins, weights=weights64.view(-1), minlength=rows * num_bins)
        sums = sums.view(rows, num_bins)
        weight_through = sums.cumsum(dim=1)[:, :width].masked_fill_(~valid, 0.0)
        weight_total = sums.sum(dim=1)
        ranked_index = positive_index.gather(1, rank_order)
        positive_weight = weights64.gather(1, ranked_index).masked_fill_(~valid, 0.0)
    return PositiveRanks(
        counts=positive_count,
        valid=valid,
        ranks=ranks,
        positive_weight=positive_weight,
        weight_through=weight_through,
        weight_total=weight_total,
    )
