"""``repro`` flow (``pedes repro``): the miniature LUPerson-MLLM reproduction (DESIGN.md §8).

Wiring only; the stages are library code:

1. **world** — :func:`training.repro.world.build_world`: unlabeled source images and a disjoint target
   benchmark written in held-out phrasings;
2. **captioners** — :func:`caption_gen.captioner.train_captioner` for each clean and noisy captioner
   (cached by a hash of config + data, so a rerun or the demo reuses them);
3. **corpora** — the ``build-corpus`` flow (a subflow, real vLLM engine) captions the source images with
   the clean captioners and, separately, with the noisy ones (kinds ``static`` + ``dynamic``);
4. **runs** — each ablation arm × seed (:func:`training.repro.runs.run_arm`): pretrain → direct transfer →
   fine-tune → test, and the clothes-change comparison (:mod:`training.repro.clothes_change`);
   ``parallel_runs`` of them at a time in worker processes (:mod:`flows.run_workers`);
5. **table** — :func:`training.repro.table.write_outputs`: ``table.md``, ``results.json``, ``r1.png``.

Every stage is resumable: rendering and captioner training are cached, the corpora skip done shards,
finished runs are found by their ``results.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from prefect import flow, task
from pydantic import ValidationError

from caption_gen.captioner.corpus_accuracy import corpus_attribute_accuracy
from flows.run_workers import run_tasks
from pedes_core.configuration import format_validation_error, save_resolved
from pedes_core.errors import ConfigError
from training.repro.arms import select_arms
from training.repro.config import CaptionerSpec, ReproConfig, load_repro_config
from training.repro.table import write_outputs

FLOW_NAME = "repro"

__all__ = ["FLOW_NAME", "load_repro_config", "repro_flow", "run_repro"]


@task(name="world", persist_result=False)
def world_task(cfg: ReproConfig) -> dict[str, str]:
    from training.repro.world import build_world

    world = build_world(cfg.world, Path(cfg.out) / "world")
    return {"source": str(world.source), "target": str(world.target)}


@task(name="captioner", persist_result=False)
def captioner_task(spec: CaptionerSpec, cfg: ReproConfig, init_from: str | None = None) -> str:
    from caption_gen.captioner import CaptionerConfig, train_captioner

    params: dict[str, Any] = {**cfg.captioning.captioner, "seed": spec.seed, "noise": spec.noise}
    if spec.steps is not None:
        params["steps"] = spec.steps
    if init_from is not None:
        params["init_from"] = init_from
        params["vision_steps"] = 0  # a continuation is the joint stage only: its vision tower is trained
    if cfg.captioning.cache_dir is not None:
        params["cache_dir"] = cfg.captioning.cache_dir
    try:
        captioner = CaptionerConfig.model_validate(params)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, f"captioning.captioner ({spec.name})")) from None
    return str(train_captioner(captioner))


def train_captioners(cfg: ReproConfig, corpora: set[str]) -> dict[str, str]:
    """Model folder of every captioner of the ``corpora`` (``clean``/``noisy``), by name; a captioner with
    ``from_captioner`` continues the trained folder of that base or clean captioner (trained first if needed,
    and returned too)."""
    specs = {"clean": cfg.captioning.clean, "noisy": cfg.captioning.noisy}
    parents = {c.name: c for c in [*cfg.captioning.bases, *cfg.captioning.clean]}
    trained: dict[str, str] = {}

    def path(spec: CaptionerSpec) -> str:
        if spec.name not in trained:
            source = path(parents[spec.from_captioner]) if spec.from_captioner is not None else None
            trained[spec.name] = captioner_task(spec, cfg, source)
        return trained[spec.name]

    for name in ("clean", "noisy"):
        if name in corpora:
            for spec in specs[name]:
                path(spec)
    return trained


def corpus_step(cfg: ReproConfig, name: str, captioners: dict[str, str], images: str) -> dict[str, Any]:
    """Write the typed build-corpus config of one corpus and run that flow as a subflow."""
    from flows.build_corpus import BuildCorpusConfig, build_corpus_flow

    out = Path(cfg.out) / f"corpus-{name}"
    cap = cfg.captioning
    build = BuildCorpusConfig.model_validate({
        "caption": {"images": images, "out": out, "name": f"repro-{name}",
                    "models": [{"name": label, "backend": "vllm", "path": path} for label, path in captioners.items()],
                    "kinds": cap.kinds, "shard_size": cap.shard_size, "batch_size": cap.shard_size,
                    "sampling": {"max_tokens": cap.max_tokens}, "retry": {"max_attempts": cap.max_attempts},
                    "progress": False},
        "task": {"retries": 1, "retry_delay_s": 1.0}})
    config = Path(cfg.out) / "flows" / f"build_corpus-{name}.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(yaml.safe_dump(build.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    return build_corpus_flow(config=str(config), overrides=[])


@task(name="arm", persist_result=False)
def arm_task(cfg: ReproConfig, arm_name: str, seed: int, corpora: dict[str, str], models: dict[str, list[str]],
             target: dict[str, str]) -> dict[str, Any]:
    from training.config import load_recipe
    from training.repro.arms import ARMS_BY_NAME, target_source
    from training.repro.runs import run_arm

    base = load_recipe(cfg.recipe, cfg.recipe_overrides)
    tgt = target_source(Path(target["annotations"]), Path(target["images"]))
    return run_arm(ARMS_BY_NAME[arm_name], seed, base=base, target=tgt,
                   corpora={k: Path(v) for k, v in corpora.items()}, models=models,
                   pretrain_epochs=cfg.pretrain_epochs, finetune_epochs=cfg.finetune_epochs,
                   mask_ratio=cfg.mask_ratio, out=Path(cfg.out) / "runs", pretrain_overrides=cfg.pretrain_overrides)


@task(name="clothes-change", persist_result=False)
def clothes_change_task(cfg: ReproConfig, seed: int) -> list[dict[str, Any]]:
    from training.repro.clothes_change import run_clothes_change

    assert cfg.clothes_change is not None
    return run_clothes_change(cfg.clothes_change, seed, Path(cfg.out) / "clothes-change")


@flow(name=FLOW_NAME, log_prints=True, persist_result=False)
def repro_flow(config: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """The miniature reproduction (module docstring); returns ``results.json``'s payload."""
    return run_repro(load_repro_config(config, list(overrides or [])))


def run_repro(cfg: ReproConfig) -> dict[str, Any]:
    """The body of :func:`repro_flow` for an already loaded config (``pedes repro``, the demo)."""
    out = Path(cfg.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    save_resolved(cfg, out)
    arms = select_arms(cfg.arms)
    world = world_task(cfg)
    target = {"annotations": str(Path(world["target"]) / "reid_raw.json"), "images": str(Path(world["target"]) / "imgs")}
    needed = {a.corpus for a in arms} - {"none"}
    specs = {"clean": cfg.captioning.clean, "noisy": cfg.captioning.noisy}
    corpora: dict[str, str] = {}
    models: dict[str, list[str]] = {}
    summaries: dict[str, Any] = {}
    paths = train_captioners(cfg, needed)
    for name in ("clean", "noisy"):
        if name not in needed:
            continue
        captioners = {s.name: paths[s.name] for s in specs[name]}
        summary = corpus_step(cfg, name, captioners, str(Path(world["source"]) / "imgs"))
        corpora[name], models[name] = summary["out"], list(captioners)
        summaries[name] = {k: summary.get(k) for k in ("out", "accepted", "rejects", "acceptance_rate", "acceptance",
                                                      "rejects_by_reason", "images_per_s", "wall_s")}
        summaries[name]["attribute_accuracy"] = corpus_attribute_accuracy(summary["out"], world["source"],
                                                                          cfg.captioning.kinds)
    jobs: list[tuple[Any, dict[str, Any]]] = [
        (arm_task, {"cfg": cfg, "arm_name": arm.name, "seed": seed, "corpora": corpora, "models": models,
                    "target": target}) for seed in range(cfg.seeds) for arm in arms]
    if cfg.clothes_change is not None and cfg.clothes_change.enabled:
        jobs += [(clothes_change_task, {"cfg": cfg, "seed": seed}) for seed in range(cfg.seeds)]
    results = run_tasks(jobs, workers=cfg.parallel_runs, log_dir=str(out))
    n_arms = cfg.seeds * len(arms)  # arm records first, then a list of clothes-change records per seed
    records: list[dict[str, Any]] = [*results[:n_arms], *(r for pair in results[n_arms:] for r in pair)]
    meta = _meta(cfg, target, summaries)
    payload = write_outputs(out, records, arms, models, meta.pop("chance_r1"), meta)
    (out / "flow-summary.json").write_text(json.dumps({"corpora": summaries, "table": str(out / "table.md")},
                                                      indent=2, default=str))
    return payload


def _meta(cfg: ReproConfig, target: dict[str, str], corpora: dict[str, Any]) -> dict[str, Any]:
    """Chance R1 and sizes of the target test split (for the table header)."""
    import numpy as np

    from eval.metrics import chance_rank1

    entries = json.loads(Path(target["annotations"]).read_text())
    test = [e for e in entries if e["split"] == "test"]
    ids = np.array([e["id"] for e in test])
    queries = sum(len(e["captions"]) for e in test)
    chance = chance_rank1([e["id"] for e in test for _ in e["captions"]], ids)
    return {"seeds": cfg.seeds, "target_test_ids": int(len(set(ids.tolist()))), "target_test_queries": queries,
            "chance_r1": chance, "corpora": corpora, "pretrain_epochs": cfg.pretrain_epochs,
            "finetune_epochs": cfg.finetune_epochs, "recipe": str(cfg.recipe)}
