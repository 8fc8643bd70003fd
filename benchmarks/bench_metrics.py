"""Benchmark ``eval.metrics.retrieval_metrics`` against a naive full-argsort implementation.

Both compute the same metrics (R1/5/10, mAP, mINP, mSD, CMC) on the same random query x gallery
cosine-like similarity matrix (default 20,000 x 20,000 float32, 1,000 identities, positives shifted
up so that the metrics are not trivial). Each implementation runs in its own fresh subprocess that
builds the matrix in place, records its resident memory, resets the kernel's peak-RSS counter
(``/proc/self/clear_refs``, so the building's temporaries do not count), runs the metric once and
reports wall time and peak memory above that baseline (``VmHWM`` after minus RSS before; falls back to
``ru_maxrss`` where the reset is not allowed), so neither run inherits the other's allocations. Results of the two are compared for agreement.

    .venv/bin/python benchmarks/bench_metrics.py                  # full size
    .venv/bin/python benchmarks/bench_metrics.py --queries 4000 --gallery 4000 --identities 200
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

IMPLEMENTATIONS = ("naive", "eval.metrics", "eval.metrics[torch]")  # default backend on CPU: numba
METRIC_KEYS = ("R1", "R5", "R10", "mAP", "mINP", "mSD")
POSITIVE_SHIFT = 0.35  # how much higher same-identity similarities are on average


def build_problem(queries: int, gallery: int, identities: int, seed: int):
    """Random similarities in [-1, 1] (built in place, no full-size temporaries) and id vectors."""
    generator = torch.Generator().manual_seed(seed)
    query_ids = torch.randint(identities, (queries,), generator=generator)
    gallery_ids = torch.arange(gallery) % identities  # every identity has a gallery item
    similarity = torch.empty(queries, gallery, dtype=torch.float32)
    step = 1024
    for begin in range(0, queries, step):
        block = similarity[begin : begin + step]
        block.uniform_(-0.9, 0.6, generator=generator)
        block.add_(POSITIVE_SHIFT * (query_ids[begin : begin + step, None] == gallery_ids[None, :]))
    return similarity, query_ids, gallery_ids


def naive_metrics(
    similarity: torch.Tensor,
    query_ids: torch.Tensor,
    gallery_ids: torch.Tensor,
    ks=(1, 5, 10),
    max_rank: int = 50,
) -> dict:
    """Full-matrix reference: argsort every row, gather ids and scores, cumulative sums (IRRA-style)."""
    order = torch.argsort(similarity, dim=1, descending=True, stable=True)
    matches = gallery_ids[order].eq(query_ids[:, None])
    ranked = similarity.gather(1, order).mul_(0.5).add_(0.5).clamp_(0.0, 1.0)
    del order
    num_pos = matches.sum(1)
    valid = num_pos > 0
    matches, ranked, num_pos = matches[valid], ranked[valid], num_pos[valid]
    cmc = matches[:, :max_rank].cumsum(1).clamp(max=1).to(torch.float64).mean(0) * 100
    hits = matches.cumsum(1, dtype=torch.float32)
    positions = torch.arange(1, matches.shape[1] + 1, dtype=torch.float32)
    ap = (hits.div_(positions) * matches).sum(1) / num_pos
    del hits
    last = matches.shape[1] - 1 - matches.flip(1).to(torch.int8).argmax(1)
    inp = num_pos / (last + 1)
    # mSD (seed 004 §3.4) on the ranked list.
    positive_scores = ranked * matches
    sum_pos = positive_scores.sum(1, dtype=torch.float64)
    cum_pos = positive_scores.cumsum(1)
    del positive_scores
    cum_all = ranked.cumsum(1)
    asp = cum_pos.div_(cum_all.clamp_(min=1e-30)).mul_(matches).sum(1, dtype=torch.float64) / num_pos
    del cum_all, cum_pos
    neg = matches.shape[1] - num_pos
    mean_neg = (ranked.sum(1, dtype=torch.float64) - sum_pos) / neg.clamp(min=1)
    pnr = torch.where(neg > 0, 1 - torch.exp(-(sum_pos / num_pos) / mean_neg), 1.0)
    out = {f"R{k}": float(cmc[k - 1]) for k in ks}
    out.update(mAP=float(ap.mean() * 100), mINP=float(inp.mean() * 100), mSD=float((pnr * asp).mean() * 100))
    out["cmc"] = cmc.tolist()
    return out


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (``VmHWM``); False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def peak_rss_kib(reset_done: bool) -> int:
    if reset_done:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def current_rss_kib() -> int:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() // 1024


def worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    similarity, query_ids, gallery_ids = build_problem(args.queries, args.gallery, args.identities, args.seed)
    warmup_seconds = warmup_mib = 0.0
    if args.impl == "naive":
        run = lambda: naive_metrics(similarity, query_ids, gallery_ids)  # noqa: E731
    else:
        from eval.metrics import retrieval_metrics

        # Warm-up on a tiny problem: loads (or, on the first run ever, JIT-compiles) the numba kernel.
        rss_before_warmup = current_rss_kib()
        warmup_start = time.perf_counter()
        retrieval_metrics(torch.rand(4, 8), [0, 1, 2, 3], [0, 1, 2, 3, 0, 1, 2, 3])
        warmup_seconds = time.perf_counter() - warmup_start
        warmup_mib = (current_rss_kib() - rss_before_warmup) / 1024
        backend = "torch" if args.impl.endswith("[torch]") else "auto"
        run = lambda: retrieval_metrics(  # noqa: E731
            similarity, query_ids, gallery_ids, chunk_size=args.chunk_size, backend=backend
        )
    gc.collect()
    baseline = current_rss_kib()
    reset_done = reset_peak_rss()
    peak_before = peak_rss_kib(reset_done)
    start = time.perf_counter()
    metrics = run()
    seconds = time.perf_counter() - start
    peak_after = peak_rss_kib(reset_done)
    print(
        json.dumps(
            {
                "impl": args.impl,
                "seconds": seconds,
                "warmup_seconds": warmup_seconds,
                "warmup_mib": warmup_mib,
                "baseline_mib": baseline / 1024,
                "peak_before_mib": peak_before / 1024,
                "peak_reset": reset_done,
                "peak_extra_mib": max(0, peak_after - baseline) / 1024,
                "metrics": {key: metrics[key] for key in METRIC_KEYS},
                "cmc": metrics["cmc"][:50],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--gallery", type=int, default=20_000)
    parser.add_argument("--identities", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--chunk-size", type=int, default=None, help="eval.metrics chunk (default: its own)")
    parser.add_argument("--impl", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.impl:
        worker(args)
        return
    results = {}
    for impl in IMPLEMENTATIONS:
        command = [
            sys.executable,
            __file__,
            "--impl",
            impl,
            "--queries",
            str(args.queries),
            "--gallery",
            str(args.gallery),
            "--identities",
            str(args.identities),
            "--seed",
            str(args.seed),
            "--threads",
            str(args.threads),
        ]
        if args.chunk_size:
            command += ["--chunk-size", str(args.chunk_size)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{impl} worker failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
        results[impl] = json.loads(done.stdout.strip().splitlines()[-1])
    naive = results["naive"]
    print(
        f"{args.queries} queries x {args.gallery} gallery, {args.identities} identities, "
        f"{args.threads} threads; input matrix {args.queries * args.gallery * 4 / 2**20:.0f} MiB (not counted)"
    )
    print("| implementation | seconds | peak extra MiB | time vs naive | memory vs naive |")
    print("|---|---:|---:|---:|---:|")
    for impl, result in results.items():
        print(
            f"| {impl} | {result['seconds']:.2f} | {result['peak_extra_mib']:.1f} | "
            f"{result['seconds'] / naive['seconds']:.3f} | {result['peak_extra_mib'] / naive['peak_extra_mib']:.3f} |"
        )
    ours = results["eval.metrics"]
    print(
        f"eval.metrics warm-up on a 4x8 problem (imports numba, loads/compiles the kernel; not in the "
        f"figures above): {ours['warmup_seconds']:.2f} s, +{ours['warmup_mib']:.0f} MiB RSS"
    )
    print("metrics:", {key: round(value, 4) for key, value in ours["metrics"].items()})
    for impl in IMPLEMENTATIONS[1:]:
        other = results[impl]
        diff = max(abs(other["metrics"][key] - naive["metrics"][key]) for key in METRIC_KEYS)
        cmc_diff = max(abs(a - b) for a, b in zip(other["cmc"], naive["cmc"], strict=True))
        print(f"{impl}: max |difference| vs naive: metrics {diff:.2e} percent points, CMC {cmc_diff:.2e}")


if __name__ == "__main__":
    main()
