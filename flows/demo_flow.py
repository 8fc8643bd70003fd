"""The ``demo`` flow behind ``make demo`` / ``pedes demo``: the main job on the embedded default.

Wiring only (each task calls library code and passes paths): synthesize pedestrians
(:mod:`caption_gen.synth`) → the ``build-corpus`` flow (subflow) captions some of them with a VLM through
the real vLLM engine — by default a tiny **random-weights** LLaVA built locally, run on the CPU, so its
captions are gibberish and end up as validation rejects (expected; ``caption.model`` points it at a real
model such as Qwen2-VL-2B-Instruct on a GPU) → the ``style-clusters`` flow (subflow) on the synthetic
benchmark captions → write the synthetic ground-truth captions as a corpus
(:mod:`training.data.import_corpus`) → validate and summarize it (:mod:`caption_gen.corpus`) → optionally
a short pretrain → fine-tune → evaluate run of the training recipes with a tiny model (:mod:`training`,
:mod:`training.protocol`). It runs
against Prefect's ephemeral local API (SQLite under ``PREFECT_HOME``), nothing to start by hand, and
leaves a markdown summary artifact. Every step is idempotent: synthesis is deterministic, the corpus
import skips done shards, training writes a new run directory each time.
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


class DemoTrainConfig(ConfigModel):
    enabled: bool = True
    pretrain_recipe: ExistingPath
    finetune_recipe: ExistingPath
    #: ``--set``-style overrides applied to both recipes (the demo's tiny CPU model and short schedule).
    overrides: list[str] = Field(default_factory=list)


class DemoCaptionConfig(ConfigModel):
    """The demo's ``build-corpus`` run (a subflow) on the first ``max_images`` synthetic images."""

    enabled: bool = True
    #: a captioning model spec (``caption_gen.backends.spec.ModelSpec``); None = the tiny random-weights
    #: LLaVA of :mod:`caption_gen.backends.tiny_vlm` on the CPU vLLM engine. On a GPU, e.g.
    #: ``{backend: vllm, hub: Qwen/Qwen2-VL-2B-Instruct}``.
    model: dict[str, Any] | None = None
    kinds: list[str] = Field(default_factory=lambda: ["static"])
    max_images: int = Field(16, ge=1)
    max_tokens: int = Field(24, ge=1)
    #: generation attempts per caption (1: the random model's rejects are not regenerated).
    max_attempts: int = Field(1, ge=1)
    shard_size: int = Field(8, ge=1)


class DemoStylesConfig(ConfigModel):
    """The demo's ``style-clusters`` run (a subflow) on the synthetic benchmark captions."""

    enabled: bool = True
    #: ``styles:`` section of the style-clusters flow config (random-weight CLIP text tower by default).
    styles: dict[str, Any] = Field(default_factory=lambda: {
        "neutralizer": "rules", "embed": {"model": "ViT-B-32", "pretrained": None},
        "cluster": {"algorithm": "kmeans-ups", "k_max": 6}, "scatter_points": 2000})


class DemoConfig(ConfigModel):
    out_dir: ConfigPath
    synth: DemoSynthConfig = Field(default_factory=DemoSynthConfig)
    caption: DemoCaptionConfig | None = None
    styles: DemoStylesConfig | None = None
    train: DemoTrainConfig | None = None


def load_demo_config(path: str | Path, overrides: list[str] | None = None) -> DemoConfig:
    return load_config(DemoConfig, path, overrides or [])


def _task(fn: Any, name: str) -> Any:
    from prefect import task

    return task(fn, name=name, persist_result=False)


def synth_step(out: str, identities: int, images_per_identity: int, outfits: int, seed: int) -> dict[str, Any]:
    from caption_gen.synth import render_dataset

    return render_dataset(out, identities=identities, images_per_identity=images_per_identity,
                          outfits_per_identity=outfits, seed=seed).to_dict()


def import_step(annotations: str, images: str, out: str) -> dict[str, Any]:
    from training.data.benchmarks import load_benchmark
    from training.data.import_corpus import import_benchmark

    result = import_benchmark(load_benchmark("cuhk-pedes", annotations, images), out, name="demo-synthetic",
                              splits=["train"])
    return {"rows": result.rows, "rejects": result.rejects, "shards_written": result.shards_written,
            "shards_skipped": result.shards_skipped}


def validate_step(corpus: str) -> dict[str, Any]:
    from caption_gen.corpus.info import corpus_info
    from caption_gen.corpus.validate import validate_corpus

    report = validate_corpus(corpus)
    if not report.ok:
        from pedes_core.errors import CorpusInvalidError

        raise CorpusInvalidError(f"{corpus}: {report.problems[0]}")
    return corpus_info(corpus)


def train_step(recipe: str, overrides: list[str]) -> dict[str, Any]:
    from training.config import load_recipe
    from training.engine.trainer import train

    result = train(load_recipe(recipe, overrides))
    return {"run_dir": str(result.run_dir), "checkpoint": result.results.get("checkpoint"),
            "test": {k: v["t2i"] for k, v in result.results.get("test", {}).items()}}


def protocol_step(protocol: dict[str, Any], out: str) -> dict[str, Any]:
    from training.protocol import ProtocolConfig, run_protocol

    run_protocol(ProtocolConfig.model_validate(protocol), out)
    return {"tables": [str(Path(out) / "direct_transfer.md"), str(Path(out) / "finetune.md")]}


#: engine settings of the tiny random VLM on a CPU (small KV cache, no CUDA graphs, small images).
TINY_VLM_ENGINE: dict[str, Any] = {"dtype": "float32", "gpu_memory_utilization": 0.1, "enforce_eager": True,
                                   "max_model_len": 1024, "max_pixels": 128 * 64}


def tiny_vlm_step(out: str) -> str:
    from caption_gen.backends.tiny_vlm import build_tiny_vlm

    return str(build_tiny_vlm(out, arch="llava", seed=0))


def build_corpus_step(cfg: DemoCaptionConfig, images: str, out: Path) -> dict[str, Any]:
    """Write the build-corpus flow config for the demo and run that flow as a subflow."""
    import yaml

    from flows.build_corpus import build_corpus_flow

    model = dict(cfg.model) if cfg.model is not None else {
        "name": "tiny-random-llava", "backend": "vllm",
        "path": _task(tiny_vlm_step, "build-tiny-vlm")(str(out / "tiny-vlm")), **TINY_VLM_ENGINE}
    listing = out / "flows" / "demo-images.txt"
    listing.parent.mkdir(parents=True, exist_ok=True)
    paths = sorted(Path(images).rglob("*.jpg"))[: cfg.max_images]
    listing.write_text("".join(f"{p}\n" for p in paths), encoding="utf-8")
    config = out / "flows" / "build_corpus.yaml"
    config.write_text(yaml.safe_dump({
        "caption": {"images": str(listing), "image_root": images, "out": str(out / "vlm-corpus"),
                    "name": "demo-vlm", "models": [model], "kinds": cfg.kinds, "shard_size": cfg.shard_size,
                    "batch_size": cfg.shard_size, "sampling": {"max_tokens": cfg.max_tokens},
                    "retry": {"max_attempts": cfg.max_attempts}},
        "task": {"retries": 1, "retry_delay_s": 1.0}}, sort_keys=False), encoding="utf-8")
    return build_corpus_flow(config=str(config), overrides=[])


def style_clusters_step(cfg: DemoStylesConfig, source: str, out: Path) -> dict[str, Any]:
    """Write the style-clusters flow config for the demo and run that flow as a subflow."""
    import yaml

    from flows.style_clusters import style_clusters_flow

    config = out / "flows" / "style_clusters.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(yaml.safe_dump({"source": source, "out": str(out / "styles"), "styles": cfg.styles},
                                     sort_keys=False), encoding="utf-8")
    return style_clusters_flow(config=str(config), overrides=[])


def demo_flow_fn(cfg: DemoConfig) -> dict[str, Any]:
    """The demo pipeline (module docstring); returns where each output is."""
    from prefect.artifacts import create_markdown_artifact

    out = Path(cfg.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    save_resolved(cfg, out)
    synth_dir, corpus_dir = out / "synthetic", out / "corpus"
    s = cfg.synth
    synth = _task(synth_step, "synthesize")(str(synth_dir), s.identities, s.images_per_identity,
                                             s.outfits_per_identity, s.seed)
    annotations, images = str(synth_dir / "reid_raw.json"), str(synth_dir / "imgs")
    extra: dict[str, Any] = {}
    if cfg.caption is not None and cfg.caption.enabled:
        built = build_corpus_step(cfg.caption, images, out)
        extra.update(vlm_corpus=built["out"], vlm_corpus_summary=str(out / "vlm-corpus.flow" / "summary.md"),
                     vlm_captions={"accepted": built["accepted"], "rejects": built["rejects"],
                                   "rejects_by_reason": built["rejects_by_reason"]})
    if cfg.styles is not None and cfg.styles.enabled:
        st = style_clusters_step(cfg.styles, annotations, out)
        extra.update(style_bank=st["bank"], style_inspector=st["report"], styles_found=st["styles"])
    imported = _task(import_step, "write-corpus")(annotations, images, str(corpus_dir))
    info = _task(validate_step, "validate-corpus")(str(corpus_dir))
    outputs: dict[str, Any] = {"synthetic": str(synth_dir), "corpus": str(corpus_dir), "synth": synth,
                               "import": imported, "corpus_rows": info.get("rows"), **extra}
    if cfg.train is not None and cfg.train.enabled:
        runs = out / "runs"
        common = [*cfg.train.overrides, f"engine.output_dir={runs}"]
        bench = {"name": "cuhk-pedes", "annotations": annotations, "images": images, "label": "Synthetic"}
        bench_set = f"{{name: cuhk-pedes, annotations: {annotations}, images: {images}, label: Synthetic}}"
        pre = _task(train_step, "pretrain")(str(cfg.train.pretrain_recipe),
                                            [*common, f"data.corpus.root={corpus_dir}"])
        ft = _task(train_step, "finetune")(str(cfg.train.finetune_recipe),
                                           [*common, f"method.pretrained={pre['checkpoint']}",
                                            f"data.benchmark={bench_set}", f"eval.benchmarks=[{bench_set}]"])
        protocol = {"benchmarks": [bench], "device": "cpu",
                    "direct_transfer": [{"init": "Demo (synthetic corpus)", "checkpoint": pre["run_dir"]}],
                    "finetune": [{"init": "Demo (synthetic corpus)", "source": "Synthetic",
                                  "checkpoint": ft["run_dir"]}]}
        tables = _task(protocol_step, "evaluate")(protocol, str(out / "tables"))
        outputs.update(pretrain_run=pre["run_dir"], finetune_run=ft["run_dir"], tables=tables["tables"],
                       finetune_test=ft["test"])
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
