"""Seed 000's clothes-change claim in the miniature world: BDAM's identity feature vs the plain dual encoder.

Protocol (declared; seed 000 evaluates on clothes-changing benchmarks without spelling out a text→image
split): synthetic people with two outfits each, disjoint from every other part of the world. Both models
are trained with the same recipe, budget, seed and batches on the train identities (BDAM with its
identity/clothing descriptions, the plain model with ``use_bdam: false``, i.e. the same encoders without
the decoupling module). Test: **queries** are the captions of each test identity's images in outfit 0,
the **gallery** is every test image in another outfit, so each query's positives wear other clothes than
the ones it describes and nobody in the gallery wears the described outfit. Metrics: text-to-image
R1/R5/R10/mAP/mINP of stage 1 (the cosine of the identity image feature and the text feature).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eval.inference import RetrievalSet
from eval.metrics import chance_rank1
from training.repro.config import ClothesChangeConfig

RESULT_KEYS = ("R1", "R5", "R10", "mAP", "mINP")


def clothes_change_set(synth: Path, split: str = "test") -> RetrievalSet:
    """Queries: captions of outfit-0 images; gallery: images in any other outfit (module docstring)."""
    import numpy as np

    entries = json.loads((synth / "reid_raw.json").read_text())
    outfit = {}
    for line in (synth / "attributes.jsonl").read_text().splitlines():
        rec = json.loads(line)
        outfit[rec["file_path"]] = int(rec["outfit_id"])
    entries = [e for e in entries if e["split"] == split]
    queries = [(c, e["id"]) for e in entries if outfit[e["file_path"]] == 0 for c in e["captions"]]
    gallery = [(e["file_path"], e["id"]) for e in entries if outfit[e["file_path"]] != 0]
    return RetrievalSet(f"clothes-change-{split}", [q for q, _ in queries], np.array([i for _, i in queries]),
                        [g for g, _ in gallery], np.array([i for _, i in gallery]), image_root=str(synth / "imgs"))


def _world(cfg: ClothesChangeConfig, out: Path) -> tuple[Path, Path]:
    """Render the clothes-change people and import their train split as a corpus with descriptions."""
    from training.engine.smoke import import_as_corpus
    from training.repro.world import render_once

    synth, corpus = out / "synth", out / "corpus"
    render_once(synth, identities=cfg.identities, images_per_identity=cfg.images_per_identity, seed=cfg.seed,
                 first_id=cfg.first_id, outfits_per_identity=2, size=(128, 64))
    if not (corpus / "corpus.json").is_file():
        import_as_corpus(synth / "reid_raw.json", synth / "imgs", corpus, descriptions=synth / "attributes.jsonl")
    return synth, corpus


def _evaluate(run_dir: Path, data: RetrievalSet) -> dict[str, float]:
    from eval.evaluator import Evaluator
    from training.data.transforms import build_test_transform
    from training.protocol import load_trained_method

    method, recipe = load_trained_method(run_dir, "cpu")
    evaluator = Evaluator(method, tokenizer=method.tokenizer,
                          transform=build_test_transform(recipe.model.image_size, recipe.data.augment),
                          device="cpu", batch_size=recipe.eval.batch_size)
    t2i = evaluator.run(data).summary()["t2i"]
    return {k: float(t2i[k]) for k in RESULT_KEYS}


def run_clothes_change(cfg: ClothesChangeConfig, seed: int, out: Path) -> list[dict[str, Any]]:
    """Train BDAM and the plain dual encoder at ``seed`` and evaluate both on the clothes-change split."""
    from training.config import load_recipe
    from training.repro.arms import with_sections
    from training.repro.runs import train_or_reuse

    out.mkdir(parents=True, exist_ok=True)
    synth, corpus = _world(cfg, out)
    base = load_recipe(cfg.recipe)
    data = base.data.model_dump(mode="python")
    data["corpus"] = {**(data.get("corpus") or {}), "root": corpus}
    data["benchmark"] = None
    test = clothes_change_set(synth, "test")
    chance = chance_rank1(test.query_ids, test.gallery_ids)
    records = []
    for name, use_bdam in (("bdam", True), ("plain", False)):
        method = base.method.model_dump(mode="python")
        method["params"] = {**method["params"], "use_bdam": use_bdam}
        recipe = with_sections(base, method=method, data=data,
                       schedule={"epochs": cfg.epochs or base.schedule.epochs},
                       engine={"seed": seed, "output_dir": out / "runs", "run_name": f"{name}-s{seed}"},
                       eval={"benchmarks": []})
        result = train_or_reuse(recipe)
        metrics = {**_evaluate(Path(result["run_dir"]), test), "chance_R1": chance}
        records.append({"arm": name, "seed": seed, "clothes_change": metrics, "run": result["run_dir"]})
    return records
