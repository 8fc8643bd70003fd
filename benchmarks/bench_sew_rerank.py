"""Sew + MCM stage 1 vs stage 2 (re-ranking by visual neighbours, seed 003 §4.1 / NAFS) on synthetic
pedestrians: a tiny CLIP trained with the Sew recipe's loss for ``--steps`` steps (the plug-in tests'
renderer and local loop), then text-to-image metrics of the cosine ranking (``t2i``) and of the
re-ranked scores (``t2i_rerank``) for each ``K``, through :class:`eval.evaluator.RetrievalEvaluator`
fed with the encoded features (no disk, no second encoding).

Usage: ``python benchmarks/bench_sew_rerank.py [--steps 150] [--ids 12] [--gallery-per-id 3] [--seeds 0 1 2]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "training" / "plugins"))

from conftest import CONTEXT, IMAGE_SIZE, synthetic_people  # noqa: E402
from plugin_training import train_steps  # noqa: E402

import training.methods  # noqa: E402,F401
from eval.evaluator import RetrievalEvaluator  # noqa: E402
from eval.inference import rerank_on_dataset  # noqa: E402
from training.models.config import ModelConfig  # noqa: E402
from training.registry import METHODS  # noqa: E402
from training.tokenization import ClipTokenizer  # noqa: E402

KEYS = ("R1", "R5", "mAP", "mINP")


def run(seed: int, steps: int, ids: int, gallery_per_id: int, ks: list[int]) -> dict[str, dict[str, float]]:
    tokenizer = ClipTokenizer(context_length=CONTEXT)
    config = ModelConfig(arch="tiny", image_size=IMAGE_SIZE, stride=16, context_length=CONTEXT, nam_layer=1)
    torch.manual_seed(seed)
    train = synthetic_people(tokenizer, ids, per_id=4, seed=100 + seed)
    gallery = synthetic_people(tokenizer, ids, per_id=gallery_per_id, seed=200 + seed)
    queries = synthetic_people(tokenizer, ids, per_id=2, seed=300 + seed)
    method = METHODS.build("sew_mcm", model=config, num_classes=ids, num_captions=train.images.shape[0],
                           tokenizer=tokenizer, length_min=5, length_max=12)
    train_steps(method, train, steps=steps, batch_size=16, lr=1e-3, seed=seed)
    method.eval()
    evaluator = RetrievalEvaluator()
    with torch.no_grad():
        evaluator.process_queries(method.encode_text(queries.tokens), queries.person_ids.numpy(), queries.tokens)
        evaluator.process_gallery(method.encode_image(gallery.images), gallery.person_ids.numpy())
    out = {"t2i": {k: evaluator.evaluate()["t2i"][k] for k in KEYS}}
    for k in ks:
        stage2 = rerank_on_dataset(method, evaluator.rerank_context(k))
        out[f"t2i_rerank K={k}"] = {key: evaluator.evaluate(stage2)["t2i_rerank"][key] for key in KEYS}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--ids", type=int, default=12)
    ap.add_argument("--gallery-per-id", type=int, default=3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--ks", type=int, nargs="+", default=[3, 5])
    args = ap.parse_args()
    torch.set_num_threads(2)
    runs = [run(s, args.steps, args.ids, args.gallery_per_id, args.ks) for s in args.seeds]
    print(f"Sew+MCM tiny CLIP, {args.steps} steps, {args.ids} ids, gallery {args.gallery_per_id}/id, "
          f"queries 2/id, seeds {args.seeds} (mean ± std)")
    print("| stage | " + " | ".join(KEYS) + " |")
    print("|---|" + "---|" * len(KEYS))
    for name in runs[0]:
        cells = []
        for key in KEYS:
            values = np.array([r[name][key] for r in runs])
            cells.append(f"{values.mean():.2f} ± {values.std():.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
