"""Sew + MCM test-time re-ranking (seed 003 §4.1, "re-ranking following NAFS") through the evaluator:
``eval.rerank_top_k > 0`` gives a second stage (``t2i_rerank``) that changes the ranking, computed from
the already-encoded features; the Sew recipe reports both stages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from conftest import COLOURS, IMAGE_SIZE
from PIL import Image

import training.methods  # noqa: F401  (registers the methods)
from eval.evaluator import Evaluator, RetrievalSet
from eval.metrics import retrieval_metrics
from pedes_core.configuration import load_config
from training.config import RecipeConfig
from training.data.transforms import build_test_transform
from training.registry import METHODS

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def _retrieval_set(root: Path) -> RetrievalSet:
    rng = np.random.default_rng(0)
    names = list(COLOURS)
    paths, gallery_ids, texts, query_ids = [], [], [], []
    for pid in range(6):
        upper, lower = names[pid], names[(pid + 2) % len(names)]
        for view in range(2):
            h, w = IMAGE_SIZE
            pixels = np.full((h, w, 3), 128, np.uint8)
            pixels[8 : h // 2, 6 : w - 6] = np.array(COLOURS[upper]) * 255
            pixels[h // 2 : h - 6, 8 : w - 8] = np.array(COLOURS[lower]) * 255
            pixels = np.clip(pixels + rng.integers(-20, 20, pixels.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / f"{pid}_{view}.png")
            paths.append(f"{pid}_{view}.png")
            gallery_ids.append(pid)
        texts += [f"a person in a {upper} shirt and {lower} trousers", f"{upper} top, {lower} pants"]
        query_ids += [pid, pid]
    return RetrievalSet("sew-synthetic", texts, np.array(query_ids), paths, np.array(gallery_ids), str(root))


def _evaluator(method, tokenizer, **kw) -> Evaluator:
    return Evaluator(method, tokenizer=tokenizer, transform=build_test_transform(IMAGE_SIZE), batch_size=5, **kw)


def test_sew_rerank_is_a_second_stage_that_changes_the_ranking(tmp_path, plugin_model_config, plugin_tokenizer):
    torch.manual_seed(0)
    method = METHODS.build("sew_mcm", model=plugin_model_config, num_classes=6, num_captions=12,
                           tokenizer=plugin_tokenizer)
    assert method.supports_rerank
    data = _retrieval_set(tmp_path)
    stage1_only = _evaluator(method, plugin_tokenizer).run(data)
    assert stage1_only.t2i_rerank is None
    evaluator = _evaluator(method, plugin_tokenizer, rerank_top_k=3)
    result = evaluator.run(data)
    assert result.t2i_rerank is not None  # before: Sew had no re-ranker, rerank_top_k was a silent no-op
    assert result.t2i["R1"] == stage1_only.t2i["R1"]  # stage 1 unchanged by turning stage 2 on
    # Stage 2 = S + Jaccard(N(T, 3), N(I, 3)) on the encoded features, by a plain loop.
    q, g = evaluator.metrics.features()
    sim = (q @ g.T).numpy().astype(np.float64)
    image_sets = [set(np.argsort(-row, kind="stable")[:3].tolist()) for row in (g @ g.T).numpy()]
    expected = np.empty_like(sim)
    for i, row in enumerate(sim):
        text_set = set(np.argsort(-row, kind="stable")[:3].tolist())
        expected[i] = [row[j] + len(text_set & s) / len(text_set | s) for j, s in enumerate(image_sets)]
    stage2 = method.rerank(evaluator.metrics.rerank_context(3))
    assert np.allclose(stage2.numpy(), expected, atol=1e-5)
    reference = retrieval_metrics(torch.tensor(expected, dtype=torch.float32), data.query_ids, data.gallery_ids,
                                  compute_msd=False)
    for key in ("R1", "R5", "mAP", "mINP"):
        assert result.t2i_rerank[key] == reference[key]
    # the effect: the second stage re-orders the gallery (and here moves the metrics)
    assert (np.argsort(-expected, axis=1, kind="stable") != np.argsort(-sim, axis=1, kind="stable")).any()
    assert any(result.t2i_rerank[k] != result.t2i[k] for k in ("R1", "R5", "mAP", "mINP"))
    summary = result.summary()
    assert summary["rerank_top_k"] == 3 and summary["t2i_rerank"]["R1"] == result.t2i_rerank["R1"]
    assert json.dumps(summary)


def test_sew_recipe_reranks_and_records_the_msd_order() -> None:
    recipe = load_config(RecipeConfig, CONFIGS / "sew_mcm.yaml")
    assert recipe.method.name == "sew_mcm"
    assert recipe.eval.rerank_top_k > 0 and recipe.eval.msd_order == "ranked"
