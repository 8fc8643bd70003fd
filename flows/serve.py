"""Serve the flows as deployments with schedules from YAML (``pedes serve --config deployments.yaml``).

File format (``configs/deployments.yaml``; relative paths resolve against that file)::

    deployments:
      - name: nightly-corpus-extension
        flow: build-corpus
        config: flows/build_corpus.yaml       # the flow's config file
        overrides: ["images.source=/data/new"]  # optional
        cron: "0 2 * * *"                     # or interval: 3600 (seconds); timezone: optional
        paused: false
        tags: [nightly]
        work_pool: pedes-gpu                  # for prefect.yaml (default: pedes-train for train, else pedes-gpu)

It is the one source of truth for deployments: ``prefect.yaml`` (work-pool deployments, ``prefect deploy
--all``) is generated from it by :func:`prefect_yaml_text` (``pedes serve -c configs/deployments.yaml
--write-prefect-yaml prefect.yaml``), and a test checks that the committed file is what it generates.

A scheduled ``build-corpus`` run over a folder that gained images captions only the new ones: images are
planned into shards deterministically and done shards are skipped (see ``flows.build_corpus``).
"""

from __future__ import annotations

import signal
import threading
from datetime import UTC
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from pedes_core.configuration import ConfigModel, ExistingPath, load_config


class DeploymentSpec(ConfigModel):
    name: str = Field(min_length=1)
    flow: str
    config: ExistingPath
    overrides: list[str] = Field(default_factory=list)
    cron: str | None = None
    interval: float | None = Field(None, gt=0)
    timezone: str | None = None
    paused: bool = False
    tags: list[str] = Field(default_factory=list)
    description: str | None = None
    work_pool: str | None = None  # prefect.yaml only; default DEFAULT_WORK_POOLS[flow] or "pedes-gpu"

    @model_validator(mode="after")
    def _one_schedule(self) -> DeploymentSpec:
        if self.cron is not None and self.interval is not None:
            raise ValueError("set at most one of cron / interval")
        if self.cron is not None:
            from prefect.client.schemas.schedules import CronSchedule
            from pydantic import ValidationError

            try:
                CronSchedule(cron=self.cron, timezone=self.timezone)
            except ValidationError as exc:
                raise ValueError(f"cron {self.cron!r}: {exc.errors()[0]['msg']}") from None
        return self


#: work pool of a flow's prefect.yaml deployment when the spec names none (docker/compose.yaml starts both)
DEFAULT_WORK_POOLS = {"train": "pedes-train"}
DEFAULT_WORK_POOL = "pedes-gpu"
#: where the worker image holds the checkout (docker/); prefect.yaml's pull step changes into it
WORKER_DIR = "/opt/pedes-forge"


class DeploymentsFile(ConfigModel):
    deployments: list[DeploymentSpec] = Field(min_length=1)


def load_deployments(path: str | Path) -> DeploymentsFile:
    """Validate the deployments file and every referenced flow name and flow config (ConfigError naming both)."""
    from flows.registry import get_flow
    from pedes_core.errors import ConfigError

    spec = load_config(DeploymentsFile, path)
    names = [d.name for d in spec.deployments]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: deployment names must be unique ({names})")
    for d in spec.deployments:
        entry = get_flow(d.flow)
        try:
            entry.load_config(d.config, d.overrides)
        except ConfigError as exc:
            raise ConfigError(f"{path}: deployment {d.name!r}: {exc}") from None
    return spec


def schedule_of(d: DeploymentSpec) -> Any:
    """A Prefect schedule object (``Cron``/``Interval``) for ``d``, or None for an unscheduled deployment."""
    from datetime import timedelta

    from prefect.schedules import Cron, Interval

    if d.cron is not None:
        return Cron(d.cron, timezone=d.timezone) if d.timezone else Cron(d.cron)
    if d.interval is not None:
        return Interval(timedelta(seconds=d.interval), timezone=d.timezone) if d.timezone else \
            Interval(timedelta(seconds=d.interval))
    return None


def build_deployments(path: str | Path) -> list[Any]:
    """``RunnerDeployment`` objects (not yet registered) for every entry of the deployments file.

    Entrypoints are module paths (``flows.build_corpus.build_corpus_flow``), so the served runs start
    from any working directory where ``pedes-forge`` is installed."""
    from prefect.deployments.runner import EntrypointType

    from flows.registry import configured_flow

    out = []
    for d in load_deployments(path).deployments:
        fl, _ = configured_flow(d.flow, d.config, d.overrides)
        sched = schedule_of(d)
        out.append(fl.to_deployment(
            name=d.name, parameters={"config": str(d.config), "overrides": list(d.overrides)},
            schedules=[sched] if sched is not None else None, paused=d.paused, tags=d.tags or None,
            description=d.description, entrypoint_type=EntrypointType.MODULE_PATH))
    return out


def serve_deployments(path: str | Path, *, limit: int | None = None) -> None:
    """Register the deployments and run them from this process until interrupted (``prefect.serve``)."""
    from prefect import serve

    serve(*build_deployments(path), limit=limit)


async def _due_runs(deployment_ids: list[str]) -> int:
    """How many flow runs of these deployments are scheduled to start by now."""
    from datetime import datetime

    from prefect import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterNextScheduledStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    async with get_client() as client:
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=deployment_ids)),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
                next_scheduled_start_time=FlowRunFilterNextScheduledStartTime(before_=datetime.now(UTC))),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=200)  # 3.8.8's server refuses null sort/limit
    return len(runs)


async def run_due_once(path: str | Path, *, limit: int | None = None, name: str = "pedes-serve") -> list[str]:
    """Register the deployments, execute the flow runs that are due now (scheduled or created by hand,
    e.g. ``prefect deployment run build-corpus/nightly-corpus-extension``) at most ``limit`` at a time,
    and return when they have finished (``pedes serve --run-once``: for an outside cron or a test).
    Returns the deployment ids."""
    import asyncio

    from prefect.runner import Runner

    deployments = await asyncio.to_thread(build_deployments, path)  # Flow.to_deployment is sync off the loop
    ids: list[str] = []
    rounds = 0
    while True:  # one runner poll takes at most `limit` runs: poll again while runs are still due
        runner = Runner(name=name, limit=limit, pause_on_shutdown=False)
        ids = [str(await runner.aadd_deployment(d)) for d in deployments]
        due = await _due_runs(ids)
        if due == 0 or rounds > due + 100:
            return ids
        previous = signal.getsignal(signal.SIGTERM)
        try:
            await runner.start(run_once=True)
        finally:
            # Runner.start installs its SIGTERM handler process-wide and leaves it; a library caller (a flow,
            # a test) would then have its forked children (DataLoader workers) run the runner's shutdown
            # on SIGTERM and exit 1. Put the caller's handler back.
            if threading.current_thread() is threading.main_thread() and previous is not None:
                signal.signal(signal.SIGTERM, previous)
        rounds += 1


def prefect_yaml_text(path: str | Path, root: str | Path) -> str:
    """``prefect.yaml`` for the deployments of ``path``; config paths relative to ``root`` (the checkout, which
    the worker image holds at :data:`WORKER_DIR`)."""
    import os

    import prefect
    import yaml

    from flows.registry import get_flow

    spec = load_deployments(path)
    base = Path(root).resolve()
    deployments = []
    for d in spec.deployments:
        entry = get_flow(d.flow)
        item: dict[str, Any] = {"name": d.name, "entrypoint": f"{entry.module.replace('.', '/')}.py:{entry.flow_attr}"}
        if d.description:
            item["description"] = d.description
        if d.tags:
            item["tags"] = list(d.tags)
        item["parameters"] = {"config": Path(os.path.relpath(Path(d.config).resolve(), base)).as_posix(),
                              "overrides": list(d.overrides)}
        item["work_pool"] = {"name": d.work_pool or DEFAULT_WORK_POOLS.get(d.flow, DEFAULT_WORK_POOL)}
        if d.cron is not None or d.interval is not None:
            sched: dict[str, Any] = {"cron": d.cron} if d.cron is not None else {"interval": d.interval}
            if d.timezone:
                sched["timezone"] = d.timezone
            if d.paused:
                sched["active"] = False
            item["schedules"] = [sched]
        deployments.append(item)
    doc = {"name": "pedes-forge", "prefect-version": prefect.__version__,
           "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": WORKER_DIR}}],
           "deployments": deployments}
    header = ("# GENERATED from configs/deployments.yaml — do not edit; regenerate with\n"
              "#   pedes serve -c configs/deployments.yaml --write-prefect-yaml prefect.yaml\n"
              "# Work-pool deployments (`prefect deploy --all` against a server; workers from docker/compose.yaml).\n"
              "# Every flow takes `config` (a YAML path inside the worker image) and `overrides` (key=value).\n")
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110)
