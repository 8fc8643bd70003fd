"""``style-clusters`` flow (seed 000 §3.3, DESIGN §4/§7): source texts → neutralize → embed → cluster →
style bank, with the inspector page published as a Prefect link artifact.

Wiring only: the work is :func:`caption_gen.styles.build.build_styles`; the task gets paths and returns
the small clustering summary. The LLM neutralizer/prompter use a captioning backend (``backend:``, a
``caption_gen.backends`` model spec) built once per process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from pydantic import Field

from caption_gen.styles.build import StylesConfig
from flows.runners import RunnerConfig
from pedes_core.configuration import ConfigModel, ConfigPath, load_config, save_resolved
from pedes_core.errors import ConfigError

FLOW_NAME = "style-clusters"


class StyleClustersConfig(ConfigModel):
    """``configs/flows/style_clusters.yaml``."""

    #: text file, benchmark annotation JSON, Parquet or corpus directory (relative to the YAML file).
    source: ConfigPath
    out: ConfigPath
    styles: StylesConfig = Field(default_factory=StylesConfig)
    #: captioning model spec (``caption_gen.backends``) for the LLM neutralizer/prompter; None = rules only.
    backend: dict[str, Any] | None = None
    runner: RunnerConfig = Field(default_factory=RunnerConfig)


def load_style_clusters_config(path: str | Path, overrides: list[str] | None = None) -> StyleClustersConfig:
    cfg = load_config(StyleClustersConfig, path, overrides or [])
    needs_llm = cfg.styles.neutralizer == "llm" or cfg.styles.prompter == "llm"
    if needs_llm and cfg.backend is None:
        raise ConfigError(f"{path}: styles.neutralizer/prompter 'llm' needs a 'backend:' model spec")
    return cfg


def _backend(spec: dict[str, Any] | None) -> Any:
    if spec is None:
        return None
    from caption_gen.backends.factory import build_backend  # cached per process
    from caption_gen.backends.spec import ModelSpec

    return build_backend(ModelSpec.model_validate(spec))


@task(name="cluster-styles", retries=1, retry_delay_seconds=5, persist_result=False)
def cluster_styles_task(config: str, overrides: list[str]) -> dict[str, Any]:
    """Run the style pipeline into ``cfg.out``; return the clustering summary (small)."""
    from caption_gen.styles.build import build_styles

    cfg = load_style_clusters_config(config, overrides)
    styles = cfg.styles.model_copy(update={"source": str(cfg.source)})
    result = build_styles(styles, cfg.out, backend=_backend(cfg.backend))
    q = result.summary.get("quality", {})
    out = Path(result.out).resolve()
    from caption_gen.styles.bank import load_style_bank

    prompts = [[s.style_id, s.size, s.prompt] for s in load_style_bank(out).styles]
    return {"out": str(out), "texts": result.n_texts, "styles": result.n_styles, "quality": q,
            "features": result.summary.get("features", {}).get("note"), "prompts": prompts,
            "bank": str(out / "bank.json"), "report": str(out / "report.html")}


@flow(name=FLOW_NAME, log_prints=True, persist_result=False)
def style_clusters_flow(config: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """Cluster ``source`` texts by writing style; publish a summary and a link to the inspector page."""
    from flows.artifacts import publish_link, publish_markdown, table

    cfg = load_style_clusters_config(config, overrides)
    save_resolved(cfg, cfg.out, name="flow.config.resolved.yaml")
    summary = cluster_styles_task(config, list(overrides or []))
    q = summary["quality"]
    rows = [[k, v] for k, v in q.items() if not isinstance(v, dict | list)]
    merge = q.get("merge", {})
    rows += [[f"clusters {k.replace('_', ' ')}", merge[k]] for k in
             ("clusters_found", "after_stabilization", "after_profile_merge", "after_prompt_merge") if k in merge]
    md = "\n".join([f"# style-clusters: {summary['texts']} texts → {summary['styles']} styles", "",
                    f"- features: {summary.get('features')}",
                    f"- bank: `{summary['bank']}`", f"- inspector: `{summary['report']}`", "",
                    table(["quality", "value"], rows), "",
                    "## Style prompts", "",
                    table(["style", "texts", "prompt"], [[sid, size, p.replace("|", "/")]
                                                         for sid, size, p in summary.get("prompts", [])])])
    publish_markdown(md, key="style-clusters-summary", description="Style clustering summary",
                     out=Path(summary["out"]) / "flow-summary.md")
    if cfg.styles.report and Path(summary["report"]).is_file():
        publish_link(summary["report"], key="style-clusters-inspector", description="Style inspector page")
    return summary
