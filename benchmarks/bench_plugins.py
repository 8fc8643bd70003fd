"""Training step time of each seed plug-in relative to the plain SDM dual encoder (issue 8 benchmark),
and the memory of the GSRC-FR feature banks per 100k training samples.

Every method is built by the registry on the same tiny ViT-B/16-shaped towers (as ``bench_nam_cost``),
gets the same batch (random 384×128 images, 40-word captions, PK-style ids: 2 images per identity) and
is timed for forward + backward + AdamW update; runs are interleaved (A B C D A B C D) to even out noise
on a shared machine. Baseline: ``sdm`` in the same run.

    .venv/bin/python benchmarks/bench_plugins.py [--steps 8] [--batch 16]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_nam_cost import make_batch  # noqa: E402

import training.methods  # noqa: E402,F401
from training.models.config import ModelConfig  # noqa: E402
from training.registry import METHODS  # noqa: E402
from training.tokenization import ClipTokenizer  # noqa: E402

METHOD_NAMES = ("sdm", "sew_mcm", "cfam", "weak_dual_granularity")


def build(name: str, config: ModelConfig, tokenizer: ClipTokenizer, batch_size: int):
    torch.manual_seed(0)
    return METHODS.build(name, model=config, num_classes=batch_size // 2, num_captions=batch_size,
                         tokenizer=tokenizer).train()


def time_steps(method, batch, steps: int) -> list[float]:
    optimizer = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=1e-5)
    method.on_epoch_start(0)
    times = []
    for i in range(steps + 1):  # the first step is warm-up
        start = time.perf_counter()
        out = method(batch)
        loss = sum(v for k, v in out.items() if k.endswith("_loss"))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(2)
    tokenizer = ClipTokenizer()
    config = ModelConfig(arch="tiny", image_size=(384, 128), vision={"width": 192, "layers": 6, "head_width": 64},
                         text={"width": 128, "layers": 6, "heads": 2}, embed_dim=128, nam_layer=5)
    batch = make_batch(tokenizer, args.batch, config.image_size)
    batch["person_ids"] = torch.arange(args.batch) // 2
    methods = {name: build(name, config, tokenizer, args.batch) for name in METHOD_NAMES}
    times: dict[str, list[float]] = {name: [] for name in METHOD_NAMES}
    with tempfile.TemporaryDirectory() as tmp:
        for method in methods.values():
            if hasattr(method, "set_run_dir"):
                method.set_run_dir(tmp)
        for _ in range(2):
            for name, method in methods.items():
                times[name] += time_steps(method, batch, args.steps)
    base = statistics.median(times["sdm"])
    print(f"tiny 6+6 layers, widths 192/128, 384x128, 40-word captions, batch {args.batch}, "
          f"{2 * args.steps} timed steps each")
    print("| method | step median (ms) | vs sdm |")
    print("|---|---:|---:|")
    for name in METHOD_NAMES:
        med = statistics.median(times[name])
        print(f"| {name} | {med * 1000:.1f} | {med / base:.2f} |")

    from training.memory_bank import FeatureBank

    for dtype in (torch.float32, torch.float16):
        bank = FeatureBank(1, 512, dtype=dtype)
        print(f"GSRC-FR banks (image + text, 512-d, {str(dtype).split('.')[-1]}): "
              f"{2 * bank.bytes_per_100k() / 2**20:.1f} MiB per 100k training samples")


if __name__ == "__main__":
    main()
