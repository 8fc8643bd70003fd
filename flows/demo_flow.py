"""The ``demo`` flow behind ``make demo`` / ``pedes demo``: the main job on the embedded default.

Wiring only (each step calls library code):

1. synthesize a small pedestrian benchmark (:mod:`caption_gen.synth`) → the ``style-clusters`` flow
   (subflow) on its captions → style bank + inspector page;
2. the miniature reproduction at quick size (:mod:`flows.repro_flow`, ``configs/repro_quick.yaml``): train
   (or reuse from the cache) a clean and a noisy captioner (:mod:`caption_gen.captioner`, real Qwen2-VL-type
   VLMs), caption unlabeled synthetic images with them through the ``build-corpus`` flow and the real vLLM
   engine (kinds from the repro config: static, dynamic, identity, clothing), **pretrain on those MLLM
   corpora** (NAM / EM + SDM), evaluate by direct transfer on a target benchmark in held-out phrasings,
   fine-tune on it, and print seed 002's ablation table with the directions that hold;
3. a summary: acceptance per kind × captioner, reject reasons, accepted captions of each kind next to the
   attributes of their image, the table, the fine-tuned R1 against chance.

It runs against Prefect's ephemeral local API (SQLite under ``PREFECT_HOME``), nothing to start by hand,
and every step is resumable (deterministic rendering, cached captioners, done shards, finished runs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field

from pedes_core.configuration import ConfigModel, ConfigPath, ExistingPath, load_config, save_resolved


class DemoSynthConfig(ConfigModel):
    identities: int = Field(60, ge=3)
    images_per_identity: int = Field(4, ge=1)
    outfits_per_identity: int = Field(2, ge=1)
    seed: int = 0


class DemoStylesConfig(ConfigModel):
    """The demo's ``style-clusters`` run (a subflow) on the synthetic benchmark captions."""

    enabled: bool = True
    #: ``styles:`` section of the style-clusters flow config.
    styles: dict[str, Any] = Field(default_factory=dict)


class DemoReproConfig(ConfigModel):
    """The quick miniature reproduction (``pedes repro --quick``) run inside the demo."""

    enabled: bool = True
    config: ExistingPath
    #: ``--set``-style overrides of the repro config (``out`` is always ``<out_dir>/repro``)
    overrides: list[str] = Field(default_factory=list)
    #: accepted captions shown per kind in the summary
    examples_per_kind: int = Field(1, ge=0)


class DemoConfig(ConfigModel):
    out_dir: ConfigPath
    synth: DemoSynthConfig = Field(default_factory=DemoSynthConfig)
    styles: DemoStylesConfig | None = None
    repro: DemoReproConfig | None = None


def load_demo_config(path: str | Path, overrides: list[str] | None = None) -> DemoConfig:
    return load_config(DemoConfig, path, overrides or [])


def _task(fn: Any, name: str) -> Any:
    from prefect import task

    return task(fn, name=name, persist_result=False)


def synth_step(out: str, identities: int, images_per_identity: int, outfits: int, seed: int) -> dict[str, Any]:
    from caption_gen.synth import render_dataset

    return render_dataset(out, identities=identities, images_per_identity=images_per_identity,
                          outfits_per_identity=outfits, seed=seed).to_dict()


def style_clusters_step(cfg: DemoStylesConfig, source: str, out: Path) -> dict[str, Any]:
    """Write the typed style-clusters flow config for the demo and run that flow as a subflow."""
    import yaml

    from flows.style_clusters import StyleClustersConfig, style_clusters_flow

    flow_cfg = StyleClustersConfig.model_validate({"source": source, "out": out / "styles", "styles": cfg.styles})
    config = out / "flows" / "style_clusters.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(yaml.safe_dump(flow_cfg.model_dump(mode="json", exclude_unset=True), sort_keys=False),
                      encoding="utf-8")
    return style_clusters_flow(config=str(config), overrides=[])


def repro_step(cfg: DemoReproConfig, out: Path) -> dict[str, Any]:
    from flows.repro_flow import run_repro
    from training.repro.config import load_repro_config

    repro_cfg = load_repro_config(cfg.config, [*cfg.overrides, f"out={out / 'repro'}"])
    payload = run_repro(repro_cfg)
    world = Path(repro_cfg.out) / "world"
    return {"payload": payload, "out": str(Path(repro_cfg.out).resolve()), "kinds": repro_cfg.captioning.kinds,
            "attributes": str(world / "source" / "attributes.jsonl")}


def examples_step(corpora: dict[str, str], attributes: str, kinds: list[str], per_kind: int) -> dict[str, Any]:
    from training.repro.examples import caption_examples

    return {name: caption_examples(path, attributes, kinds=kinds, per_kind=per_kind) for name, path in corpora.items()}


def demo_flow_fn(cfg: DemoConfig) -> dict[str, Any]:
    """The demo pipeline (module docstring); returns where each output is and the headline figures."""
    from prefect.artifacts import create_markdown_artifact

    out = Path(cfg.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    save_resolved(cfg, out)
    synth_dir = out / "synthetic"
    s = cfg.synth
    synth = _task(synth_step, "synthesize")(str(synth_dir), s.identities, s.images_per_identity,
                                             s.outfits_per_identity, s.seed)
    outputs: dict[str, Any] = {"synthetic": str(synth_dir), "synth": synth}
    if cfg.styles is not None and cfg.styles.enabled:
        st = style_clusters_step(cfg.styles, str(synth_dir / "reid_raw.json"), out)
        outputs.update(style_bank=st["bank"], style_inspector=st["report"], styles_found=st["styles"])
        outputs["style_prompts"] = [prompt for _, _, prompt in st.get("prompts", [])]
        outputs["style_features"] = st.get("features")
    if cfg.repro is not None and cfg.repro.enabled:
        rp = repro_step(cfg.repro, out)
        payload = rp["payload"]
        corpora = {name: c["out"] for name, c in payload["meta"]["corpora"].items()}
        outputs.update(repro=rp["out"], repro_table=str(Path(rp["out"]) / "table.md"),
                       captioning={name: {k: c.get(k) for k in ("accepted", "rejects", "acceptance",
                                                                 "rejects_by_reason")}
                                   for name, c in payload["meta"]["corpora"].items()},
                       corpora=corpora, chance_r1=payload["chance_r1"], directions=payload["directions"],
                       finetune=payload["stats"]["finetune"], direct=payload["stats"]["direct"])
        outputs["caption_examples"] = _task(examples_step, "caption-examples")(
            corpora, rp["attributes"], rp["kinds"], cfg.repro.examples_per_kind)
    (out / "demo-summary.json").write_text(json.dumps(outputs, indent=2, default=str))
    lines = ["# PEDES Forge demo", "", "| output | where |", "|---|---|"]
    lines += [f"| {k} | `{v}` |" for k, v in outputs.items() if isinstance(v, str)]
    create_markdown_artifact("\n".join(lines), key="pedes-demo", description="PEDES Forge demo outputs")
    return outputs


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run :func:`demo_flow_fn` as a Prefect flow (ephemeral API unless ``PREFECT_API_URL`` is set)."""
    import os

    # A private ephemeral API database next to the outputs (no clash with other Prefect users of ~/.prefect);
    # set PREFECT_API_URL / PREFECT_HOME to report to a running server instead.
    home = Path(os.environ.setdefault("PREFECT_HOME", str(Path(cfg.out_dir).resolve() / ".prefect")))
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")  # a busy 2-core machine
    from prefect import flow

    return flow(demo_flow_fn, name="pedes-demo", log_prints=True, persist_result=False)(cfg)
