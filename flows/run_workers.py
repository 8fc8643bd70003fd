"""Worker processes for CPU-bound training tasks of a flow (the repro's arm × seed runs).

A tiny model uses two CPU threads poorly: on the 2-core machine one cpu-tiny training run with 2 torch
threads trained 137 samples/s, two runs with 1 thread each side by side 2 × 100 (``benchmarks/RESULTS.md``,
"Parallel runs"). So independent runs go to a pool of ``workers`` processes (Prefect's
``ProcessPoolTaskRunner``: each task run is still a Prefect task run of the flow), each with its share of
the cores as torch threads and the parent's logging (quiet terminal, the flow's ``pedes.log``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from prefect import Task

__all__ = ["available_cores", "init_worker", "run_tasks", "threads_per_worker"]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """Torch threads of each of ``workers`` concurrent processes: an equal share of the cores, at least 1."""
    return max(1, available_cores() // max(1, workers))


def init_worker(threads: int, log_dir: str | None) -> None:
    """Process-pool initializer: ``threads`` torch threads (before anything imports torch, through the
    environment as well, and the OpenMP nesting guard of :mod:`training.engine.cpu_threads`), and the
    parent's logging, filed into ``log_dir/pedes.log``."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    os.environ["NUMBA_NUM_THREADS"] = str(threads)  # numba's OpenMP pool (the evaluator's ranking)
    from flows.cli.logs import attach_run_dir, setup_logging
    from pedes_core.logs import ENV_VERBOSE

    setup_logging(int(os.environ.get(ENV_VERBOSE, "0") or 0))
    if log_dir is not None:
        attach_run_dir(log_dir)
    import torch

    from training.engine.cpu_threads import limit_openmp_nesting

    torch.set_num_threads(threads)
    limit_openmp_nesting()


def run_tasks(jobs: Sequence[tuple[Task[..., Any], dict[str, Any]]], *, workers: int,
              log_dir: str | None = None) -> list[Any]:
    """Run each ``(task, parameters)`` and return their results in order: in this process one after the
    other when ``workers`` is 1, else ``workers`` at a time in a process pool (:func:`init_worker`)."""
    if workers <= 1 or len(jobs) <= 1:
        return [task(**params) for task, params in jobs]
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.task_runners import ProcessPoolTaskRunner

    workers = min(workers, len(jobs))
    runner = ProcessPoolTaskRunner(max_workers=workers, initializer=init_worker,
                                   initargs=(threads_per_worker(workers), log_dir))
    # The runner hands its workers this process's settings; with the ephemeral API they would name no URL,
    # and every worker would start a temporary server of its own (≈ 18 s and a core each, and task runs
    # filed in a database nobody reads). Name this process's server instead.
    url = _temporary_server_url()
    with temporary_settings(updates={PREFECT_API_URL: url} if url else {}), runner:
        futures = [runner.submit(task, params) for task, params in jobs]
        return [future.result() for future in futures]


def _temporary_server_url() -> str | None:
    """API URL of the temporary (ephemeral) Prefect server this process runs against, if it does."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return None
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the process's singleton (the one the ephemeral client started)
    return server.api_url if server.running else None
