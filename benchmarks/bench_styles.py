"""Style clustering benchmarks (issue 4): time and peak memory of DBSCAN (auto eps), HDBSCAN and
KMeans+UPS on n 512-d L2-normalized Gaussian-mixture vectors (PCA to 50-d first, as the pipeline does),
the CLIP ViT-B-32 text tower's CPU throughput, and ``build_styles`` on N texts with cached embeddings.

Baseline in the same run: scikit-learn DBSCAN fitted on *all* points of the 20k set (exact, no fit
sample) — the ratio shows what the fit-sample + extension costs/saves.

    .venv/bin/python benchmarks/bench_styles.py --sizes 20000 100000 200000 --build-texts 100000
Each measurement runs in a fresh subprocess so peak RSS (ru_maxrss) is per measurement.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def mixture(n: int, dim: int = 512, k: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, dim)).astype(np.float32)
    y = rng.integers(0, k, n)
    x = centers[y] + rng.normal(scale=0.6, size=(n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, y


def run_cluster(algo: str, n: int, exact: bool = False) -> dict:
    from sklearn.metrics import adjusted_rand_score

    from caption_gen.styles import cluster as cl

    x, y = mixture(n)
    t0 = time.perf_counter()
    z, _ = cl.reduce_dims(x, 50, 0)
    t_pca = time.perf_counter() - t0
    t1 = time.perf_counter()
    if algo == "dbscan":
        fit = cl.fit_dbscan(z, max_fit_points=n if exact else 30000, seed=0)
    elif algo == "hdbscan":
        fit = cl.fit_hdbscan(z, max_fit_points=20000, seed=0)
    else:
        fit = cl.fit_kmeans_ups(z, seed=0)
    labels, info = cl.stabilize(z, fit.labels, min_size=cl.auto_min_cluster_size(n))
    t_cluster = time.perf_counter() - t1
    return {"algo": algo + (" (exact, all points)" if exact else ""), "n": n, "pca_s": t_pca, "cluster_s": t_cluster,
            "total_s": time.perf_counter() - t0, "styles": int(labels.max()) + 1,
            "noise_before": info["noise_share_before"], "ari": float(adjusted_rand_score(y, labels)),
            "params": fit.params}


def run_clip(n: int) -> dict:
    import torch

    from caption_gen.styles.embed import ClipTextEmbedder

    texts = [f"A [person] with [color] [hair] wears a [color] [garment] number {i}, and carries a [belongings]." for i in range(n)]
    emb = ClipTextEmbedder("ViT-B-32", None, batch_size=64, device="cpu")
    emb.encode(texts[:64])
    t0 = time.perf_counter()
    emb.encode(texts)
    dt = time.perf_counter() - t0
    return {"clip_texts": n, "clip_s": dt, "texts_per_s": n / dt, "torch_threads": torch.get_num_threads()}


def run_build(n: int, workdir: str) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "caption_gen" / "styles"))
    from conftest import make_styled_captions

    from caption_gen.styles.build import StylesConfig, build_styles
    from caption_gen.styles.embed import ClipTextEmbedder, text_sha256
    from caption_gen.styles.neutralize import RuleNeutralizer

    texts, planted = make_styled_captions(n // 4, seed=3)
    texts = [f"{t} (#{i})" for i, t in enumerate(texts)]  # unique texts
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    # pre-populate the embedding cache ("cached embeddings"): unit vectors keyed like the real embedder
    key = ClipTextEmbedder("ViT-B-32", None, device="cpu").key
    neutral = RuleNeutralizer().neutralize(texts)
    # a style-aware stand-in encoder: each planted style has its own mixture component
    first: dict[str, int] = {}
    for i, t in enumerate(neutral):
        first.setdefault(text_sha256(t), planted[i])
    hashes = list(first)
    rng = np.random.default_rng(5)
    centers = rng.normal(size=(4, 512)).astype(np.float32)
    vecs = centers[[first[h] for h in hashes]] + rng.normal(scale=0.6, size=(len(hashes), 512)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    pq.write_table(pa.table({"key": [key] * len(hashes), "text_sha256": hashes,
                             "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1)), 512)}),
                   work / "emb.parquet")
    cfg = StylesConfig()
    cfg.embed.cache = work / "emb.parquet"
    t0 = time.perf_counter()
    res = build_styles(cfg, work / "out", texts=texts)
    from sklearn.metrics import adjusted_rand_score

    return {"build_texts": n, "build_s": time.perf_counter() - t0, "styles": res.n_styles,
            "computed": res.summary["features"]["embeddings_computed"], "timings": res.summary["timings"],
            "ari_vs_planted": float(adjusted_rand_score(planted, res.labels))}


def child(spec: dict) -> None:
    kind = spec["kind"]
    if kind == "cluster":
        out = run_cluster(spec["algo"], spec["n"], spec.get("exact", False))
    elif kind == "clip":
        out = run_clip(spec["n"])
    else:
        out = run_build(spec["n"], spec["workdir"])
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out, default=str), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[20000, 100000, 200000])
    ap.add_argument("--algos", nargs="+", default=["dbscan", "hdbscan", "kmeans-ups"])
    ap.add_argument("--clip-texts", type=int, default=512)
    ap.add_argument("--build-texts", type=int, default=100000)
    ap.add_argument("--timeout", type=int, default=900, help="per measurement, seconds")
    ap.add_argument("--workdir", default="/tmp/bench_styles")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    specs = [{"kind": "cluster", "algo": "dbscan", "n": args.sizes[0], "exact": True}]
    specs += [{"kind": "cluster", "algo": a, "n": n} for n in args.sizes for a in args.algos]
    specs += [{"kind": "clip", "n": args.clip_texts}, {"kind": "build", "n": args.build_texts, "workdir": args.workdir}]
    results = []
    for spec in specs:
        try:
            proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                                  text=True, timeout=args.timeout)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            res = json.loads(line[7:]) if line else {"spec": spec, "error": proc.stderr[-500:]}
        except subprocess.TimeoutExpired:
            res = {"spec": spec, "error": f"cut off after {args.timeout} s"}
        results.append(res)
        print(json.dumps(res, default=str), flush=True)
    base = next((r for r in results if "exact" in str(r.get("algo", "")) and "total_s" in r), None)
    samp = next((r for r in results if r.get("algo") == "dbscan" and r.get("n") == args.sizes[0]), None)
    if base and samp:
        print(f"dbscan {args.sizes[0]}: sampled-fit / exact-fit time ratio = {samp['total_s'] / base['total_s']:.2f}")


if __name__ == "__main__":
    main()
