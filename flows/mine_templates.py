"""``mine-templates`` flow (seed 002 §3.1, automated; DESIGN §7): captions → TDE template bank.

Wiring only: :func:`caption_gen.styles.sources.load_style_texts` reads the captions,
:func:`caption_gen.templates_mining.mine_templates` slots/validates/deduplicates them and
:func:`caption_gen.templates_mining.write_template_bank` writes the bank the captioning engine loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from pydantic import Field

from flows.runners import RunnerConfig
from pedes_core.configuration import ConfigModel, ConfigPath, load_config

FLOW_NAME = "mine-templates"


class MineTemplatesConfig(ConfigModel):
    """``configs/flows/mine_templates.yaml``."""

    #: text file (one caption per line), annotation JSON, Parquet, or corpus directory.
    captions: ConfigPath
    #: the bank to write (``.json``, or ``.txt`` for one template per line).
    out: ConfigPath
    split: str | None = None
    max_captions: int | None = Field(None, ge=1)
    max_templates: int | None = Field(None, ge=1)
    threshold: float = Field(0.92, gt=0, le=1)
    seed: int = 0
    #: captioning model spec for LLM template writing; None = rule-based slotting.
    backend: dict[str, Any] | None = None
    runner: RunnerConfig = Field(default_factory=RunnerConfig)


def load_mine_templates_config(path: str | Path, overrides: list[str] | None = None) -> MineTemplatesConfig:
    return load_config(MineTemplatesConfig, path, overrides or [])


@task(name="mine-templates", retries=1, retry_delay_seconds=5, persist_result=False)
def mine_task(config: str, overrides: list[str]) -> dict[str, Any]:
    """Read captions, mine, write the bank; return its path and the mining stats."""
    from caption_gen.styles.sources import load_style_texts
    from caption_gen.templates_mining import mine_templates, write_template_bank
    from flows.style_clusters import _backend

    cfg = load_mine_templates_config(config, overrides)
    src = load_style_texts(cfg.captions, split=cfg.split, max_texts=cfg.max_captions, seed=cfg.seed)
    result = mine_templates(src.texts, backend=_backend(cfg.backend), threshold=cfg.threshold,
                            max_templates=cfg.max_templates)
    path = write_template_bank(result, cfg.out, source=src.origin)
    return {"bank": str(Path(path).resolve()), "stats": result.stats,
            "examples": [t.text for t in result.templates[:5]]}


@flow(name=FLOW_NAME, log_prints=True, persist_result=False)
def mine_templates_flow(config: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """Mine a TDE template bank from captions; publish the stats as a markdown artifact."""
    from flows.artifacts import publish_markdown, table

    out = mine_task(config, list(overrides or []))
    s = out["stats"]
    rows = [[k, v] for k, v in s.items() if not isinstance(v, dict)]
    rows += [[f"rejected: {r}", n] for r, n in s.get("rejects_by_reason", {}).items()]
    md = "\n".join([f"# mine-templates: {s.get('written', 0)} templates → `{out['bank']}`", "",
                    table(["stat", "value"], rows), "", "Examples:", "",
                    *[f"- `{t}`" for t in out["examples"]]])
    publish_markdown(md, key="mine-templates-summary", description="Template mining summary",
                     out=Path(out["bank"]).with_suffix(".summary.md"))
    return out
