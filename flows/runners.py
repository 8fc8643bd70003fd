"""Task-runner selection for the flows (DESIGN §7): the embedded default runs tasks in threads of the
flow process; ``kind: ray`` runs them on a Ray cluster through ``prefect-ray``.

GPU discipline:

The caption tasks go to :func:`task_runner_for`: the flow run's own runner when it is of the configured
kind, else one started for the flow body — so deployments (whose entrypoint carries Prefect's default
runner) honour ``runner.kind: ray`` too.

* ``ray``: every caption task asks Ray for ``num_gpus`` (1 per task on a GPU cluster, 0 on CPU-only test
  machines), so Ray places at most one caption task per GPU; the engine is cached per Ray worker process.
* ``thread``: caption tasks share the flow process; :func:`gpu_slot` (a process-wide semaphore with
  ``gpu_slots`` permits, default one per visible GPU, one on a CPU) makes sure at most one task per GPU
  holds the engine at a time. Across processes/workers, tag the caption tasks (``caption_tag``) and
  create a Prefect tag concurrency limit (``prefect concurrency-limit create pedes-gpu 1``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from pedes_core.configuration import ConfigModel
from pedes_core.errors import ConfigError


class RunnerConfig(ConfigModel):
    """``runner:`` section of every flow config."""

    kind: Literal["thread", "ray"] = "thread"
    #: thread runner: worker threads (None = Prefect's default).
    max_workers: int | None = Field(None, ge=1)
    #: ray runner: cluster address (``ray://head:10001``, ``auto``); None = start a local Ray instance.
    address: str | None = None
    #: ray runner: extra ``ray.init`` keyword arguments (e.g. ``{num_cpus: 2, include_dashboard: false}``).
    init_kwargs: dict[str, Any] = Field(default_factory=dict)
    #: ray runner: GPUs requested by each caption task (1 on a GPU cluster; 0 for CPU-only runs).
    num_gpus: float = Field(0.0, ge=0)
    #: ray runner: CPUs requested by each caption task.
    num_cpus: float | None = Field(None, ge=0)
    #: thread runner: concurrent caption tasks per flow process (None = one per visible GPU, or 1).
    gpu_slots: int | None = Field(None, ge=1)


def make_task_runner(cfg: RunnerConfig) -> Any:
    """A Prefect task runner for ``cfg`` (``ThreadPoolTaskRunner`` or prefect-ray's ``RayTaskRunner``)."""
    if cfg.kind == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=cfg.max_workers)
    try:
        from prefect_ray import RayTaskRunner
    except ImportError:  # pragma: no cover - depends on the install
        raise ConfigError("runner.kind: ray needs the 'ray' extra: pip install 'pedes-forge[ray]'") from None
    return RayTaskRunner(address=cfg.address, init_kwargs=dict(cfg.init_kwargs) or None)


_RUNNER_CLASS = {"thread": "ThreadPoolTaskRunner", "ray": "RayTaskRunner"}


@contextlib.contextmanager
def task_runner_for(cfg: RunnerConfig) -> Iterator[Any]:
    """The task runner to submit caption tasks to: the flow run's own runner when it is of the configured
    kind (``pedes flow run`` attaches it), else a fresh one started here and stopped on exit — so a
    flow started from a deployment (whose entrypoint carries the default thread runner) still honours
    ``runner.kind: ray`` from its config."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    current = getattr(ctx, "task_runner", None) if ctx is not None else None
    if current is not None and type(current).__name__ == _RUNNER_CLASS[cfg.kind]:
        yield current
        return
    with make_task_runner(cfg) as runner:
        yield runner


@contextlib.contextmanager
def remote_options(cfg: RunnerConfig) -> Iterator[None]:
    """Ray resource requests (``num_gpus``/``num_cpus``) for tasks submitted inside the block; no-op for threads."""
    if cfg.kind != "ray":
        yield
        return
    from prefect_ray.context import remote_options as ray_remote_options

    opts: dict[str, Any] = {"num_gpus": cfg.num_gpus}
    if cfg.num_cpus is not None:
        opts["num_cpus"] = cfg.num_cpus
    with ray_remote_options(**opts):
        yield


_SLOTS: dict[int, threading.BoundedSemaphore] = {}
_SLOTS_GUARD = threading.Lock()


def default_gpu_slots() -> int:
    """One slot per visible CUDA device, or 1 without one."""
    try:
        import torch

        return max(1, torch.cuda.device_count())
    except Exception:  # pragma: no cover - torch missing/broken
        return 1


@contextlib.contextmanager
def gpu_slot(slots: int | None = None) -> Iterator[None]:
    """Hold one of this process's ``slots`` GPU permits (see module docstring)."""
    n = slots or default_gpu_slots()
    with _SLOTS_GUARD:
        sem = _SLOTS.setdefault(n, threading.BoundedSemaphore(n))
    with sem:
        yield
