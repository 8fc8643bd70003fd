"""One arm × one seed of the miniature ablation: pretrain → direct transfer → fine-tune → test.

Each stage goes through the project's own trainer (:func:`training.engine.trainer.train`) and evaluator,
exactly as ``pedes train`` runs a recipe. A finished stage is reused on a rerun (its ``results.json``
is the done marker), so an interrupted ``pedes repro`` resumes where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.config import BenchmarkSourceConfig, RecipeConfig
from training.repro.arms import Arm, finetune_recipe, pretrain_recipe

RESULT_KEYS = ("R1", "R5", "R10", "mAP", "mINP")


def _t2i(summary: dict[str, Any]) -> dict[str, float]:
    return {k: float(summary["t2i"][k]) for k in RESULT_KEYS}


def _same_recipe(run_dir: Path, recipe: RecipeConfig) -> bool:
    """Whether ``run_dir`` was trained from ``recipe`` (its ``config.resolved.yaml`` validates to the same
    recipe): a changed rate, corpus or checkpoint to start from is a new run, never a reused result."""
    from pydantic import ValidationError

    from pedes_core.configuration import RESOLVED_CONFIG_NAME, read_yaml
    from pedes_core.errors import ConfigError

    try:
        stored = RecipeConfig.model_validate(read_yaml(run_dir / RESOLVED_CONFIG_NAME))
    except (ConfigError, ValidationError):  # missing, unreadable or of an older schema: not the same recipe
        return False
    return stored.model_dump(mode="json") == recipe.model_dump(mode="json")


def finished_run(recipe: RecipeConfig) -> dict[str, Any] | None:
    """``results.json`` of the newest finished run of exactly ``recipe`` under its output folder (None if none)."""
    out, run_name = Path(recipe.engine.output_dir), recipe.engine.run_name
    candidates = sorted(out.glob(f"{run_name}-*/results.json"), key=lambda p: p.stat().st_mtime)
    for path in reversed(candidates):
        if not _same_recipe(path.parent, recipe):
            continue
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
    return None


def train_or_reuse(recipe: RecipeConfig) -> dict[str, Any]:
    """Train ``recipe``, or return the results of a finished run of the same recipe (resume of the flow)."""
    from training.engine.trainer import train

    assert recipe.engine.run_name is not None
    done = finished_run(recipe)
    if done is not None:
        return done
    return train(recipe).results


def last_epoch_stat(run_dir: Path, name: str) -> float | None:
    """The last per-epoch value of ``name`` (e.g. ``nam_coverage``) in a run's ``metrics.jsonl``."""
    from training.engine.monitor import METRICS_FILE

    value = None
    path = run_dir / METRICS_FILE
    if path.is_file():
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record.get("type") == "epoch" and name in record:
                value = float(record[name])
    return value


def evaluate_untrained(base: RecipeConfig, target: BenchmarkSourceConfig, seed: int) -> dict[str, float]:
    """Direct transfer of a randomly initialized model (the "no pretraining" row): the chance-level floor."""
    import torch

    from eval.evaluator import Evaluator
    from training.data.transforms import build_test_transform
    from training.engine.data_setup import benchmark_test_set
    from training.engine.trainer import build_method, seed_everything

    seed_everything(seed)
    method = build_method(base, num_classes=1, num_captions=1)
    method.eval()
    evaluator = Evaluator(method, tokenizer=method.tokenizer,
                          transform=build_test_transform(base.model.image_size, base.data.augment),
                          device=torch.device("cpu"), batch_size=base.eval.batch_size)
    return _t2i(evaluator.run(benchmark_test_set(target, "test")).summary())


def run_arm(arm: Arm, seed: int, *, base: RecipeConfig, target: BenchmarkSourceConfig, corpora: dict[str, Path],
            models: dict[str, list[str]], pretrain_epochs: int, finetune_epochs: int, mask_ratio: float,
            out: Path, pretrain_overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Direct-transfer and fine-tuned test metrics (t2i R1/R5/R10/mAP/mINP) of ``arm`` at ``seed``."""
    out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"arm": arm.name, "seed": seed}
    pretrained: Path | None = None
    if arm.corpus == "none":
        record["direct"] = evaluate_untrained(base, target, seed)
    else:
        recipe = pretrain_recipe(base, arm, corpus=corpora[arm.corpus], models=models[arm.corpus], target=target,
                                 seed=seed, epochs=pretrain_epochs, mask_ratio=mask_ratio, out=out,
                                 overrides=pretrain_overrides)
        pre = train_or_reuse(recipe)
        record["direct"] = _t2i(pre["test"][target.display])
        record["pretrain_run"] = pre["run_dir"]
        record["nam_coverage"] = last_epoch_stat(Path(pre["run_dir"]), "nam_coverage")
        pretrained = Path(pre["checkpoint"])
    ft = train_or_reuse(finetune_recipe(base, arm, pretrained=pretrained, target=target, seed=seed, epochs=finetune_epochs,
                                out=out))
    record["finetune"] = _t2i(ft["test"][target.display])
    record["finetune_run"] = ft["run_dir"]
    return record
