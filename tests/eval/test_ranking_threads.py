"""The compiled (numba) ranking keeps torch's thread count: numba's OpenMP pool, started by the first
parallel call of a process, set the calling thread's OpenMP count to every core, silently undoing a
``torch.set_num_threads(1)`` (a fresh process, because the pool starts once per process)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from eval.ranking import numba_available

PROBE = """
import torch
torch.set_num_threads(1)
from eval.ranking import rank_positives
scores = torch.rand(64, 200)
index = torch.randint(0, 200, (64, 3))
counts = torch.full((64,), 3, dtype=torch.int64)
ranks = rank_positives(scores, index, counts, backend="numba").ranks
print(torch.get_num_threads(), int(ranks.min()) >= 1)
"""


@pytest.mark.skipif(not numba_available(), reason="no numba")
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: the thread count cannot change")
def test_numba_ranking_leaves_torch_one_thread():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["1", "True"]
