"""NAM cost: training step time with NAM vs EM on the same batch (issue 5 benchmark; target <= 15 %).

Both runs use ``nam_sdm`` with the same model, batch and seeds; NAM is measured in its second epoch
(masks from the stored r, plus the extra no-gradient T^full pass through the first l text blocks
and the store write), EM never touches the store. A step is forward + backward + AdamW update.
Usage: ``python benchmarks/bench_nam_cost.py [--steps 12] [--batch 32]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

import training.methods  # noqa: F401
from training.models.config import ModelConfig
from training.registry import METHODS
from training.tokenization import ClipTokenizer

WORDS = "man woman red blue black white jacket shirt jeans shoes bag backpack hair long short coat".split()


def make_batch(tokenizer: ClipTokenizer, batch: int, image_size: tuple[int, int]) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    captions = [
        " ".join(WORDS[int(i)] for i in torch.randint(0, len(WORDS), (40,), generator=g))
        for _ in range(batch)
    ]
    return {
        "images": torch.randn(batch, 3, *image_size, generator=g),
        "text_tokens": tokenizer(captions),
        "person_ids": torch.arange(batch),
        "caption_ids": torch.arange(batch),
        "image_index": torch.arange(batch),
    }


def time_steps(masking: str, config: ModelConfig, tokenizer, batch, steps: int, run_dir: str) -> list[float]:
    torch.manual_seed(0)
    method = METHODS.build(
        "nam_sdm",
        model=config,
        num_classes=batch["images"].shape[0],
        num_captions=batch["images"].shape[0],
        tokenizer=tokenizer,
        masking=masking,
    ).train()
    method.set_run_dir(run_dir)
    optimizer = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=1e-5)
    method.on_epoch_start(0)
    method(batch)  # warm-up + fills the store for NAM
    method.on_epoch_end(0)
    method.on_epoch_start(1)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        out = method(batch)
        loss = sum(v for k, v in out.items() if k.endswith("_loss"))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(2)
    tokenizer = ClipTokenizer()
    # tiny-but-not-trivial, ViT-B/16-shaped: 384x128 (24x8 patches), 6-layer towers with the 3:2
    # image:text width ratio of ViT-B/16 (192 vs 128), l = 5 of 6 (paper: 10 of 12), 40-word captions
    config = ModelConfig(
        arch="tiny",
        image_size=(384, 128),
        vision={"width": 192, "layers": 6, "head_width": 64},
        text={"width": 128, "layers": 6, "heads": 2},
        embed_dim=128,
        nam_layer=5,
    )
    batch = make_batch(tokenizer, args.batch, config.image_size)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for masking in ("em", "nam", "em", "nam"):  # interleaved to even out machine noise
            results.setdefault(masking, []).extend(
                time_steps(masking, config, tokenizer, batch, args.steps, tmp)
            )
    em, nam = statistics.median(results["em"]), statistics.median(results["nam"])
    print(
        f"config: tiny 6+6 layers, widths 192/128, 384x128, 40-word captions, batch {args.batch}, nam_layer 5, {2 * args.steps} steps each"
    )
    print(f"EM  step median: {em * 1000:.1f} ms")
    print(f"NAM step median: {nam * 1000:.1f} ms")
    print(f"NAM/EM ratio: {nam / em:.3f} (overhead {100 * (nam / em - 1):+.1f} %, target <= +15 %)")


if __name__ == "__main__":
    main()
