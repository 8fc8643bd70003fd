"""CPU training after ``torch.set_num_threads`` was called, with and without the OpenMP nesting guard
(training/engine/cpu_threads.py). Each case is one fresh process training the same tiny dual encoder on
synthetic pedestrians for a fixed number of epochs; times are medians over interleaved repeats and reported
as ratios to the untouched baseline.

* ``baseline``: nothing calls ``set_num_threads``;
* ``toggled, guard off``: ``set_num_threads(1); set_num_threads(n)`` first (what vLLM does around each chat
  pre-processing), nested OpenMP allowed (``OMP_MAX_ACTIVE_LEVELS=8``, which the guard respects);
* ``toggled, guard on``: the same toggle, default guard (one active OpenMP level).

    .venv/bin/python benchmarks/bench_openmp_nesting.py [--epochs 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CASES = {"baseline": (False, None), "toggled, guard off": (True, "8"), "toggled, guard on": (True, None)}


def _recipe(synth: Path, out: Path, epochs: int) -> dict:
    bench = {"name": "cuhk-pedes", "annotations": str(synth / "reid_raw.json"), "images": str(synth / "imgs"),
             "label": "synthetic"}
    return {
        "model": {"arch": "cpu-tiny", "image_size": [64, 32], "stride": 8},
        "method": {"name": "sdm", "params": {}},
        "data": {"benchmark": bench, "batch_size": 32, "num_workers": 0, "sampler": "pk", "pk_instances": 2,
                 "val_fraction": 0.1, "augment": {"crop_padding": 4, "erasing_prob": 0.0}},
        "optim": {"name": "adamw", "lr": 1e-3},
        "schedule": {"epochs": epochs, "warmup_epochs": 0.5},
        "engine": {"device": "cpu", "output_dir": str(out), "run_name": "omp", "progress": False,
                   "tensorboard": False, "seed": 0, "checkpoint_every_steps": 100_000},
        "eval": {"every_epochs": epochs, "batch_size": 128, "benchmarks": [bench], "cmc_plot": False},
    }


def _child(recipe_path: str, toggle: bool) -> None:
    import torch
    import yaml

    if toggle:
        n = torch.get_num_threads()
        torch.set_num_threads(1)
        torch.set_num_threads(n)
    from training.config import RecipeConfig
    from training.engine.trainer import train

    recipe = RecipeConfig.model_validate(yaml.safe_load(Path(recipe_path).read_text()))
    t0 = time.perf_counter()
    train(recipe)
    print(json.dumps({"seconds": time.perf_counter() - t0}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--identities", type=int, default=60)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], args.child[1] == "1")
        return
    import yaml

    from training.engine.smoke import render_synthetic_benchmark

    with tempfile.TemporaryDirectory() as tmp:
        synth = render_synthetic_benchmark(Path(tmp) / "synth", args.identities, 4, seed=0)
        recipe_path = Path(tmp) / "recipe.yaml"
        recipe_path.write_text(yaml.safe_dump(_recipe(synth, Path(tmp) / "runs", args.epochs)))
        times: dict[str, list[float]] = {name: [] for name in CASES}
        for _ in range(args.repeats):
            for name, (toggle, levels) in CASES.items():
                env = {k: v for k, v in os.environ.items() if k != "OMP_MAX_ACTIVE_LEVELS"}
                if levels is not None:
                    env["OMP_MAX_ACTIVE_LEVELS"] = levels
                out = subprocess.run([sys.executable, __file__, "--child", str(recipe_path), "1" if toggle else "0"],
                                     env=env, capture_output=True, text=True, check=True, cwd=ROOT)
                times[name].append(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
    base = statistics.median(times["baseline"])
    print(f"tiny dual encoder, {args.identities} synthetic identities, {args.epochs} epochs, "
          f"{os.cpu_count()} cores, median of {args.repeats}")
    print(f"{'case':<22} {'seconds':>8} {'vs baseline':>12}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<22} {med:8.1f} {med / base:11.2f}x")


if __name__ == "__main__":
    main()
