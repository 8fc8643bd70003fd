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

A scheduled ``build-corpus`` run over a folder that gained images captions only the new ones: images are
planned into shards deterministically and done shards are skipped (see ``flows.build_corpus``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from caption_gen.configuration import ConfigModel, ExistingPath, load_config


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


class DeploymentsFile(ConfigModel):
    deployments: list[DeploymentSpec] = Field(min_length=1)


def load_deployments(path: str | Path) -> DeploymentsFile:
    """Validate the deployments file and every referenced flow name and flow config (ConfigError naming both)."""
    from caption_gen.errors import ConfigError
    from flows.registry import get_flow

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
    """``RunnerDeployment`` objects (not yet registered) for every entry of the deployments file."""
    from flows.registry import configured_flow

    out = []
    for d in load_deployments(path).deployments:
        fl, _ = configured_flow(d.flow, d.config, d.overrides)
        sched = schedule_of(d)
        out.append(fl.to_deployment(
            name=d.name, parameters={"config": str(d.config), "overrides": list(d.overrides)},
            schedules=[sched] if sched is not None else None, paused=d.paused, tags=d.tags or None,
            description=d.description))
    return out


def serve_deployments(path: str | Path, *, limit: int | None = None) -> None:
    """Register the deployments and run them from this process until interrupted (``prefect.serve``)."""
    from prefect import serve

    serve(*build_deployments(path), limit=limit)
