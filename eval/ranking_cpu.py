"""Compiled CPU backend of ``eval.ranking.rank_positives`` (numba, parallel over query rows).

Per row, each gallery item is placed by binary search among the row's positives (already in rank
order), and a histogram of item counts and normalized similarities per slot is accumulated; the
cumulative histogram at slot ``k`` is the 1-based rank of the ``(k+1)``-th positive and the sum of
normalized similarities up to it. Ties follow ``eval.ranking``: equal scores rank by gallery index.
Temporaries are ``O(P)`` per row; nothing of size ``c x G`` is allocated.

Threads: numba's OpenMP layer shares torch's libgomp, and when its thread pool starts (the first parallel
call in a process) it sets the calling thread's OpenMP thread count to ``NUMBA_NUM_THREADS`` (all cores). That
silently undid a ``torch.set_num_threads(1)`` (measured: a worker process of two one-thread training runs
side by side went to two threads after its first evaluation, and the pair trained 4× slower). The kernel
runs with torch's thread count and torch's count is put back after the call.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

_HALF = np.float32(0.5)
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


@numba.njit(parallel=True, cache=True, nogil=True)
def _rank_rows_kernel(
    scores, ranked_index, counts, ranks_out, through_out, total_out
):  # pragma: no cover - compiled
    rows, gallery_size = scores.shape
    for row in numba.prange(rows):
        count = counts[row]
        positive_scores = np.empty(count, dtype=np.float32)
        positive_index = np.empty(count, dtype=np.int64)
        for k in range(count):
            positive_index[k] = ranked_index[row, k]
            positive_scores[k] = scores[row, positive_index[k]]
        hits = np.zeros(count + 1, dtype=np.int64)
        sums = np.zeros(count + 1, dtype=np.float64)
        for item in range(gallery_size):
            score = scores[row, item]
            low = 0
            high = count
            while low < high:  # first slot whose positive is NOT ranked before the item
                middle = (low + high) >> 1
                other = positive_scores[middle]
                if other > score or (other == score and positive_index[middle] < item):
                    low = middle + 1
                else:
                    high = middle
            weight = score * _HALF + _HALF
            weight = min(max(weight, _ZERO), _ONE)
            hits[low] += 1
            sums[low] += np.float64(weight)
        running_hits = 0
        running_sum = 0.0
        for k in range(count):
            running_hits += hits[k]
            running_sum += sums[k]
            ranks_out[row, k] = running_hits
            through_out[row, k] = running_sum
        total_out[row] = running_sum + sums[count]


def rank_rows(
    scores: torch.Tensor, ranked_index: torch.Tensor, counts: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(ranks, weight_through, weight_total)`` for CPU tensors, see ``eval.ranking.rank_positives``.

    Args:
        scores: ``(c, G)`` float32 CPU scores.
        ranked_index: ``(c, P)`` int64 gallery indices of each row's positives in rank order.
        counts: ``(c,)`` int64 number of valid positives per row.
    """
    scores_np = scores.contiguous().numpy()
    index_np = ranked_index.contiguous().numpy()
    counts_np = counts.contiguous().numpy()
    rows, width = index_np.shape
    ranks = np.zeros((rows, width), dtype=np.int64)
    through = np.zeros((rows, width), dtype=np.float64)
    total = np.zeros(rows, dtype=np.float64)
    threads = torch.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        _rank_rows_kernel(scores_np, index_np, counts_np, ranks, through, total)
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    return torch.from_numpy(ranks), torch.from_numpy(through), torch.from_numpy(total)
