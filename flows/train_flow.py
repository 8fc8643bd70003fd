"""``train`` flow (seed 001/002 protocol, DESIGN §5/§7): pretrain on a caption corpus → fine-tune on each
configured benchmark → evaluate direct transfer and fine-tuned checkpoints → tables as artifacts.

Accepts an existing corpus (``corpus:``) or builds one first by running the ``build-corpus`` flow as a
subflow (``build_corpus:`` = that flow's config file). Wiring only: recipes are loaded with
:func:`training.config.load_recipe` (plus ``--set``-style overrides), trained by
:func:`training.engine.trainer.train` and evaluated by :func:`training.protocol.run_protocol`. Training
scale-out stays torchrun (``torchrun --nnodes N --nproc-per-node G -m flows.cli train ...``), not Ray.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from prefect import flow, task
from pydantic import Field, model_validator

from flows.runners import RunnerConfig
from pedes_core.configuration import ConfigModel, ConfigPath, ExistingPath, load_config, save_resolved
from training.config import BenchmarkSourceConfig

FLOW_NAME = "train"


class TrainFlowConfig(ConfigModel):
    """``configs/flows/train.yaml``."""

    #: where runs/, tables/ and the summary go.
    out_dir: ConfigPath
    #: an existing corpus directory ...
    corpus: ConfigPath | None = None
    #: ... or a build-corpus flow config, run first as a subflow.
    build_corpus: ExistingPath | None = None
    pretrain_recipe: ExistingPath
    #: fine-tune recipe, run once per benchmark in ``benchmarks`` (None = pretrain + direct transfer only).
    finetune_recipe: ExistingPath | None = None
    #: fine-tuning sources and evaluation targets (test split).
    benchmarks: list[BenchmarkSourceConfig] = Field(default_factory=list)
    #: ``--set``-style overrides applied to both recipes (e.g. a short schedule), then the per-stage ones.
    overrides: list[str] = Field(default_factory=list)
    pretrain_overrides: list[str] = Field(default_factory=list)
    finetune_overrides: list[str] = Field(default_factory=list)
    #: row label in the tables.
    label: str = "Ours (corpus)"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    runner: RunnerConfig = Field(default_factory=RunnerConfig)

    @model_validator(mode="after")
    def _one_corpus_source(self) -> TrainFlowConfig:
        if (self.corpus is None) == (self.build_corpus is None):
            raise ValueError("set exactly one of corpus (an existing corpus) or build_corpus (a build-corpus config)")
        return self


def load_train_flow_config(path: str | Path, overrides: list[str] | None = None) -> TrainFlowConfig:
    return load_config(TrainFlowConfig, path, overrides or [])


def _bench_override(b: BenchmarkSourceConfig) -> str:
    # JSON is a YAML flow mapping: parse_overrides reads it back into the nested section.
    return json.dumps({"name": b.name, "annotations": str(b.annotations), "images": str(b.images), "label": b.display})


@task(name="train-recipe", retries=1, retry_delay_seconds=10, persist_result=False)
def train_task(recipe: str, overrides: list[str]) -> dict[str, Any]:
    """Train one recipe; return its run directory, checkpoint and test metrics (small)."""
    from training.config import load_recipe
    from training.engine.trainer import train

    result = train(load_recipe(recipe, overrides))
    return {"run_dir": str(result.run_dir), "checkpoint": result.results.get("checkpoint"),
            "test": {k: v["t2i"] for k, v in result.results.get("test", {}).items()}}


@task(name="evaluate-protocol", retries=1, retry_delay_seconds=10, persist_result=False)
def protocol_task(protocol: dict[str, Any], out: str) -> dict[str, str]:
    """Direct-transfer and fine-tune tables; returns the table paths."""
    from training.protocol import ProtocolConfig, run_protocol

    run_protocol(ProtocolConfig.model_validate(protocol), out)
    return {name: str(Path(out) / f"{name}.md") for name in ("direct_transfer", "finetune")
            if (Path(out) / f"{name}.md").is_file()}


@flow(name=FLOW_NAME, log_prints=True, persist_result=False)
def train_flow(config: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """Pretrain → fine-tune per benchmark → evaluate; publish the tables as markdown artifacts."""
    from flows.artifacts import publish_markdown

    cfg = load_train_flow_config(config, overrides)
    out = Path(cfg.out_dir).resolve()
    save_resolved(cfg, out, name="flow.config.resolved.yaml")
    corpus: str
    built: dict[str, Any] | None = None
    if cfg.corpus is not None:
        corpus = str(cfg.corpus)
    else:
        from flows.build_corpus import build_corpus_flow

        built = build_corpus_flow(config=str(cfg.build_corpus))
        corpus = built["out"]
    runs = out / "runs"
    common = [*cfg.overrides, f"engine.output_dir={runs}"]
    if cfg.device != "auto":
        common.append(f"engine.device={cfg.device}")
    pre = train_task(str(cfg.pretrain_recipe), [*common, f"data.corpus.root={corpus}", *cfg.pretrain_overrides])
    outputs: dict[str, Any] = {"corpus": corpus, "pretrain_run": pre["run_dir"], "finetune_runs": {}}
    finetune_rows: list[dict[str, Any]] = []
    if cfg.finetune_recipe is not None:
        for b in cfg.benchmarks:
            bench = _bench_override(b)
            ft = train_task.with_options(name=f"finetune-{b.display}")(
                str(cfg.finetune_recipe),
                [*common, f"method.pretrained={pre['checkpoint']}", f"data.benchmark={bench}",
                 f"eval.benchmarks=[{bench}]", *cfg.finetune_overrides])
            outputs["finetune_runs"][b.display] = ft["run_dir"]
            finetune_rows.append({"init": cfg.label, "source": b.display, "checkpoint": ft["run_dir"]})
    if cfg.benchmarks:
        protocol = {"benchmarks": [b.model_dump(mode="json") for b in cfg.benchmarks], "device": cfg.device,
                    "direct_transfer": [{"init": cfg.label, "checkpoint": pre["run_dir"]}],
                    "finetune": finetune_rows}
        tables = protocol_task(protocol, str(out / "tables"))
        outputs["tables"] = tables
        for name, path in tables.items():
            publish_markdown(Path(path).read_text(encoding="utf-8"), key=f"train-{name.replace('_', '-')}",
                             description=f"{name.replace('_', ' ')} table")
    if built is not None:
        outputs["build_corpus"] = {k: built.get(k) for k in ("rows", "accepted", "rejects")}
    (out / "train-flow-summary.json").write_text(json.dumps(outputs, indent=2, default=str) + "\n")
    return outputs
