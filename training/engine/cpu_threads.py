"""Keep OpenMP from nesting thread teams on CPU (a 30x slow-down we measured, and its guard).

``torch.set_num_threads`` also calls ``mkl_set_dynamic(false)``; from then on an MKL GEMM issued *inside*
one of PyTorch's own parallel regions (e.g. the CPU flash-attention backward, which calls ``cpublas::gemm``
per block inside ``at::parallel_for``) opens a second, nested OpenMP team, because libgomp allows nested
levels by default. On the 2-core CI machine that oversubscription made a tiny training run ~30x slower
(measured 2026-11-23: 4.5 s → 138 s for the same 2-epoch run after ``set_num_threads(1); set_num_threads(2)``).
Anything in the process can trigger it: vLLM wraps every chat pre-processing in
``set_default_torch_num_threads`` (so a flow that captions with the in-process vLLM engine and then trains
was hit), and so can user code or tests.

PyTorch never wants nested OpenMP parallelism (``at::parallel_for`` runs serially inside a parallel
region), so limiting OpenMP to one active level is what PyTorch assumes anyway. :func:`limit_openmp_nesting`
sets ``max-active-levels`` to 1 on the loaded OpenMP runtime (and in the environment, for child processes
and for a runtime loaded later). It is called when a training run or an evaluation starts.
"""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

ENV_VAR = "OMP_MAX_ACTIVE_LEVELS"


def _loaded_openmp_runtimes() -> list[str]:
    """Paths of the OpenMP runtimes mapped into this process (libgomp, libiomp5, libomp)."""
    maps = Path("/proc/self/maps")
    if not maps.exists():  # not Linux: nothing to inspect; the environment variable still applies
        return []
    found: list[str] = []
    for line in maps.read_text().splitlines():
        path = line.split()[-1] if line.strip() else ""
        name = os.path.basename(path)
        if name.startswith(("libgomp", "libiomp5", "libomp")) and ".so" in name and path not in found:
            found.append(path)
    return found


def limit_openmp_nesting() -> list[str]:
    """Set OpenMP ``max-active-levels`` to 1 in every loaded runtime; returns the runtimes that were set.

    Idempotent and cheap. The value applies to the calling thread's data environment and to the threads it
    forks; the environment variable covers runtimes loaded afterwards and child processes (DataLoader
    workers, torchrun ranks). A value the user put in ``OMP_MAX_ACTIVE_LEVELS`` is kept and applied instead.
    """
    try:
        levels = max(1, int(os.environ.setdefault(ENV_VAR, "1")))
    except ValueError:
        log.warning("%s=%r is not an integer; using 1", ENV_VAR, os.environ[ENV_VAR])
        levels = 1
    done: list[str] = []
    for path in _loaded_openmp_runtimes():
        try:
            fn = ctypes.CDLL(path).omp_set_max_active_levels
        except (OSError, AttributeError):  # pragma: no cover - unusual runtime without the OpenMP API
            continue
        fn.argtypes = [ctypes.c_int]
        fn.restype = None
        fn(levels)
        done.append(path)
    if done:
        log.debug("OpenMP max-active-levels = %d in %s", levels, ", ".join(done))
    return done


def openmp_max_active_levels() -> int | None:
    """The current ``max-active-levels`` of the first loaded OpenMP runtime (None when none is loaded)."""
    for path in _loaded_openmp_runtimes():
        try:
            fn = ctypes.CDLL(path).omp_get_max_active_levels
        except (OSError, AttributeError):  # pragma: no cover
            continue
        fn.restype = ctypes.c_int
        return int(fn())
    return None
