"""BDAM costs (issue 7 benchmarks), all figures from one run on the same machine:

1. Fusion cost vs sequence length: time (forward + backward) and peak memory of the seed 000 §3.4 Mamba
   fusion (2 residual Mamba layers, d 256, state 16; the exact pure-PyTorch chunked selective scan on CPU,
   the ``mamba_ssm`` kernel on GPU) vs the 4-layer Transformer fusion baseline (§4.5) on the same token
   sequence, for L = 64 … 4,096 tokens; the scaling exponent is the slope of log(time) on log(L)
   (least squares over the lengths). Each (mixer, L) point runs in a fresh subprocess; peak memory is the
   resident high-water mark above the state after building the module and inputs (``/proc/self/clear_refs``).
2. Training step time of the full BDAM method vs the same backbone without BDAM (``use_bdam: false``):
   tiny ViT/BERT, 64×64 images, PK batch, forward + backward + Adam, medians of interleaved runs.

    .venv/bin/python benchmarks/bench_bdam_fusion.py [--lengths 64 256 1024 4096] [--batch 2] [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def fusion_point(mixer: str, length: int, batch: int, repeats: int) -> dict:
    """One (mixer, L) measurement in this process."""
    import torch

    from training.models.bdam.fusion import FusionModule

    torch.manual_seed(0)
    dim = 256
    module = FusionModule(dim, dim, dim=dim, out_dim=dim, mixer=mixer, dropout=0.0)
    n_img = length // 2
    n_txt = length - n_img - 1
    f_img, f_txt = torch.randn(batch, dim), torch.randn(batch, dim)
    img_tok = torch.randn(batch, n_img, dim, requires_grad=True)
    txt_tok = torch.randn(batch, n_txt, dim, requires_grad=True)
    mask = torch.ones(batch, n_txt)
    module(f_img, f_txt, img_tok, txt_tok, mask).final.sum().backward()  # warm-up
    try:
        Path("/proc/self/clear_refs").write_text("5")
        base = _rss_kib("VmRSS")
    except OSError:
        base = _rss_kib("VmRSS")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        module.zero_grad(set_to_none=True)
        module(f_img, f_txt, img_tok, txt_tok, mask).final.sum().backward()
        times.append(time.perf_counter() - start)
    peak = _rss_kib("VmHWM")
    return {"mixer": mixer, "length": length, "seconds": statistics.median(times),
            "peak_mib": max(0, peak - base) / 1024}


def step_times(batch_size: int, steps: int) -> dict[str, float]:
    import torch

    import training.methods  # noqa: F401
    from training.models.config import ModelConfig
    from training.registry import METHODS
    from training.tokenization import ClipTokenizer

    tok = ClipTokenizer()
    cfg = ModelConfig(arch="tiny", image_size=(64, 64), context_length=32, vision={"patch_size": 8})
    g = torch.Generator().manual_seed(0)
    pids = torch.arange(batch_size) // 4
    batch = {
        "images": torch.randn(batch_size, 3, 64, 64, generator=g),
        "text_tokens": tok([f"a person {i % 7} wearing a red coat and blue jeans" for i in range(batch_size)]),
        "person_ids": pids,
        "identity_caption": [f"a slim person number {int(p)} with black hair" for p in pids],
        "clothing_caption": [f"a coat of colour {i % 5} and jeans" for i in range(batch_size)],
    }
    methods = {}
    for name, use_bdam in (("plain backbone", False), ("BDAM", True)):
        torch.manual_seed(0)
        methods[name] = METHODS.build("bdam", model=cfg, num_classes=0, num_captions=0, tokenizer=tok, depth=2,
                                      heads=2, fusion="mamba", fusion_dim=64, hard_negatives=3,
                                      use_bdam=use_bdam).train()
    times: dict[str, list[float]] = {n: [] for n in methods}
    opts = {n: torch.optim.Adam(m.parameters(), lr=1e-4) for n, m in methods.items()}
    for i in range(2 * steps + 2):
        for name, method in methods.items():
            start = time.perf_counter()
            out = method(batch)
            loss = sum(v for k, v in out.items() if k.endswith("_loss"))
            opts[name].zero_grad(set_to_none=True)
            loss.backward()
            opts[name].step()
            if i >= 2:  # warm-up steps
                times[name].append(time.perf_counter() - start)
    return {n: statistics.median(t) for n, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 512, 1024, 2048, 4096])
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--point", nargs=2, metavar=("MIXER", "LENGTH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.point:
        import torch

        torch.set_num_threads(2)
        print(json.dumps(fusion_point(args.point[0], int(args.point[1]), args.batch, args.repeats)))
        return

    rows = []
    for length in args.lengths:
        for mixer in ("mamba", "transformer"):
            res = subprocess.run([sys.executable, __file__, "--point", mixer, str(length), "--batch", str(args.batch),
                                  "--repeats", str(args.repeats)], capture_output=True, text=True, check=True)
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(f"  {mixer:11s} L={length:5d}: {rows[-1]['seconds']:.3f} s, +{rows[-1]['peak_mib']:.0f} MiB",
                  flush=True)
    print(f"\nfusion forward+backward, batch {args.batch}, d 256 (CPU, exact torch scan)")
    print("| L | mamba s | transformer s | mamba MiB | transformer MiB |")
    print("|---:|---:|---:|---:|---:|")
    by = {(r["mixer"], r["length"]): r for r in rows}
    for length in args.lengths:
        m, t = by[("mamba", length)], by[("transformer", length)]
        print(f"| {length} | {m['seconds']:.3f} | {t['seconds']:.3f} | {m['peak_mib']:.0f} | {t['peak_mib']:.0f} |")
    x = np.log(np.array(args.lengths, dtype=float))
    for mixer in ("mamba", "transformer"):
        y = np.log([by[(mixer, n)]["seconds"] for n in args.lengths])
        print(f"scaling exponent (time ~ L^k), {mixer}: k = {np.polyfit(x, y, 1)[0]:.2f}")

    import torch

    torch.set_num_threads(2)
    steps = step_times(16, args.steps)
    base = steps["plain backbone"]
    print("\ntraining step (tiny ViT/BERT, 64x64, batch 16 = 4 ids x 4, fwd+bwd+Adam), medians:")
    for name, sec in steps.items():
        print(f"  {name:15s}: {sec * 1000:.1f} ms  ({sec / base:.2f}x plain)")


if __name__ == "__main__":
    main()
