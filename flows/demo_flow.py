"""The ``demo`` flow behind ``make demo`` / ``pedes demo``: the main job on the embedded default.

Wiring only (each task calls library code and passes paths): synthesize pedestrians
(:mod:`caption_gen.synth`) → write them as a corpus (:mod:`training.data.import_corpus`) → validate and
summarize the corpus (:mod:`caption_gen.corpus`) → optionally a short pretrain → fine-tune → evaluate
run of the training recipes with a tiny model (:mod:`training`, :mod:`eval.protocol`). It runs
against Prefect's ephemeral local API (SQLite under ``PREFECT_HOME``), nothing to start by hand, and
leaves a markdown summary artifact. Every step is idempotent: synthesis is deterministic, the corpus
import skips done shards, training writes a new run directory each time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field

from caption_gen.configuration import ConfigModel, ConfigPath, ExistingPath, load_config, save_resolved


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


class DemoConfig(ConfigModel):
    out_dir: ConfigPath
    synth: DemoSynthConfig = Field(default_factory=DemoSynthConfig)
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
        from caption_gen.errors import CorpusInvalidError

        raise CorpusInvalidError(f"{corpus}: {report.problems[0]}")
    return corpus_info(corpus)


def train_step(recipe: str, overrides: list[str]) -> dict[str, Any]:
    from training.config import load_recipe
    from training.engine.trainer import train

    result = train(load_recipe(recipe, overrides))
    return {"run_dir": str(result.run_dir), "checkpoint": result.results.get("checkpoint"),
            "test": {k: v["t2i"] for k, v in result.results.get("test", {}).items()}}


def protocol_step(protocol: dict[str, Any], out: str) -> dict[str, Any]:
    from eval.protocol import ProtocolConfig, run_protocol

    run_protocol(ProtocolConfig.model_validate(protocol), out)
    return {"tables": [str(Path(out) / "direct_transfer.md"), str(Path(out) / "finetune.md")]}


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
    imported = _task(import_step, "write-corpus")(annotations, images, str(corpus_dir))
    info = _task(validate_step, "validate-corpus")(str(corpus_dir))
    outputs: dict[str, Any] = {"synthetic": str(synth_dir), "corpus": str(corpus_dir), "synth": synth,
                               "import": imported, "corpus_rows": info.get("rows")}
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
