"""Flow registry: name → (flow object, config model, config loader). Used by ``pedes flow``,
``pedes serve`` and the demo.

Every flow takes the same parameters, ``config`` (a YAML path; relative paths inside resolve against
its directory) and ``overrides`` (``key.sub=value`` strings), so the CLI, served deployments and
``prefect.yaml`` deployments all call them the same way. The task runner comes from the config's
``runner:`` section and is attached with ``flow.with_options(task_runner=...)`` at call time.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pedes_core.errors import ConfigError


@dataclass(frozen=True)
class FlowEntry:
    name: str
    module: str
    flow_attr: str
    loader_attr: str
    summary: str
    #: optional ``check(cfg)`` run by ``pedes flow run`` before Prefect starts (e.g. the corpus lock).
    preflight_attr: str | None = None

    def flow(self) -> Any:
        return getattr(importlib.import_module(self.module), self.flow_attr)

    def load_config(self, path: str | Path, overrides: list[str] | None = None) -> Any:
        return getattr(importlib.import_module(self.module), self.loader_attr)(path, overrides or [])

    def preflight(self, cfg: Any) -> None:
        if self.preflight_attr is not None:
            getattr(importlib.import_module(self.module), self.preflight_attr)(cfg)


FLOWS: dict[str, FlowEntry] = {
    e.name: e
    for e in (
        FlowEntry("build-corpus", "flows.build_corpus", "build_corpus_flow", "load_build_corpus_config",
                  "images → planned shards → captions (kinds × models), validated → corpus + run summary",
                  preflight_attr="check_not_locked"),
        FlowEntry("style-clusters", "flows.style_clusters", "style_clusters_flow", "load_style_clusters_config",
                  "texts → neutralize → embed → cluster → style bank + inspector page"),
        FlowEntry("mine-templates", "flows.mine_templates", "mine_templates_flow", "load_mine_templates_config",
                  "captions → TDE template bank"),
        FlowEntry("train", "flows.train_flow", "train_flow", "load_train_flow_config",
                  "pretrain → fine-tune per benchmark → evaluate → tables"),
        FlowEntry("repro", "flows.repro_flow", "repro_flow", "load_repro_config",
                  "miniature world → captioners → MLLM corpora → ablation runs → table (papers' directions)"),
    )
}


def flow_names() -> list[str]:
    return list(FLOWS)


def get_flow(name: str) -> FlowEntry:
    try:
        return FLOWS[name]
    except KeyError:
        raise ConfigError(f"unknown flow {name!r}; choose one of: {', '.join(FLOWS)}") from None


def configured_flow(name: str, config: str | Path, overrides: list[str] | None = None) -> tuple[Any, Any]:
    """Validate ``config`` (clear ConfigError before Prefect starts) and return ``(flow, cfg)`` with the
    configured task runner attached."""
    from flows.runners import make_task_runner

    entry = get_flow(name)
    cfg = entry.load_config(config, overrides)
    return entry.flow().with_options(task_runner=make_task_runner(cfg.runner)), cfg


def run_flow(name: str, config: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Run flow ``name`` once in this process against the configured Prefect API (the ephemeral local
    SQLite API unless ``PREFECT_API_URL`` points at a server); returns the flow's small summary dict."""
    fl, _ = configured_flow(name, config, overrides)
    return fl(config=str(Path(config).resolve()), overrides=list(overrides or []))
