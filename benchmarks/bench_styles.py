"""Style clustering benchmarks (seed 000 §3.3, DESIGN §4): time and peak memory of DBSCAN (auto eps), HDBSCAN and
KMeans+UPS on n 512-d L2-normalized Gaussian-mixture vectors (PCA to 50-d first, as the pipeline does),
the CLIP ViT-B-32 text tower's CPU throughput, and ``build_styles`` on N texts with cached embeddings.

Baseline in the same run: scikit-learn DBSCAN fitted on *all* points of the 20k set (exact, no fit
sample) — the ratio shows what the fit-sample + extension costs/saves.

    .venv/bin/python benchmarks/bench_styles.py --sizes 20000 100000 200000 --build-texts 100000
Each measurement runs in a fresh subprocess so peak RSS (ru_maxrss) is per measurement.

Quality (seed 000 §3.3: style clusters should be styles, with prompts that differ)::

    .venv/bin/python benchmarks/bench_styles.py --quality [--baseline-root DIR]

runs ``build_styles`` with default settings on planted-style corpora from three generators (the four
styles of the tests' fixture, the five of ``tests/caption_gen/styles/style_generator.py``, and four
written here only, never used by a test) plus the synthetic benchmark's captions (no planted labels),
and reports the adjusted Rand index vs the planted styles, cluster counts (found by the clustering /
final styles) and the largest pairwise prompt similarity (``caption_gen.styles.prompts.prompt_similarity``).
``--baseline-root`` points at an unpacked older tree (``git archive <rev> caption_gen pedes_core templates``)
whose ``build_styles`` is measured the same way in the same run — the "before".
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


def _alt_generator(per: int, seed: int) -> tuple[list[str], list[int]]:
    """Four styles written for the benchmark only: key-value fields, one run-on narrative chained with
    "and", a participle-led sentence, exclamations/questions."""
    import random

    colors = ["black", "white", "red", "blue", "green", "grey", "orange", "tan", "maroon", "olive"]
    tops, bottoms = ["coat", "sweatshirt", "polo shirt", "parka", "dress", "blazer"], ["jeans", "trousers", "skirt", "shorts"]
    shoes, hair = ["boots", "trainers", "flats", "sneakers"], ["ponytail", "bun", "short hair", "long hair", "braids"]
    people = [("woman", "she", "her"), ("man", "he", "his"), ("teenager", "they", "their"), ("gentleman", "he", "his")]
    r = random.Random(seed)

    def attrs() -> dict:
        w = r.choice(people)
        return {"w": w[0], "s": w[1], "p": w[2], "c": [r.choice(colors) for _ in range(3)], "g": r.choice(tops),
                "b": r.choice(bottoms), "sh": r.choice(shoes), "h": r.choice(hair),
                "bag": r.choice(["a purse", "a briefcase", "a box", ""])}

    def kv(a: dict) -> str:
        parts = [f"Gender: {a['w']}", f"Hair: {a['h']}", f"Upper: {a['c'][0]} {a['g']}", f"Lower: {a['c'][1]} {a['b']}",
                 f"Shoes: {a['c'][2]} {a['sh']}"] + ([f"Carrying: {a['bag']}"] if a["bag"] else [])
        return (". " if r.random() < 0.5 else " | ").join(parts) + "."

    def story(a: dict) -> str:
        t = (f"There is a {a['w']} walking on the sidewalk and {a['s']} is wearing a {a['c'][0]} {a['g']} and "
             f"{a['c'][1]} {a['b']} and {a['s']} has {a['h']}")
        if r.random() < 0.6:
            t += f" and {a['s']} is also wearing {a['c'][2]} {a['sh']} on {a['p']} feet"
        if a["bag"]:
            t += f" and {a['s']} seems to be holding {a['bag']} in {a['p']} hand"
        return t + r.choice([" while talking on the phone.", " in the middle of the day.", "."])

    def part(a: dict) -> str:
        return (f"{r.choice(['Walking', 'Heading', 'Hurrying', 'Strolling'])} "
                f"{r.choice(['down the street', 'toward the camera', 'past a store'])} in a {a['c'][0]} {a['g']} and "
                f"{a['c'][1]} {a['b']}, the {a['w']} {r.choice(['wears', 'has on'])} {a['c'][2]} {a['sh']}"
                + (f" and carries {a['bag']}" if a["bag"] else "") + ".")

    def excl(a: dict) -> str:
        pool = [f"Wow, look at that {a['c'][0]} {a['g']}!", f"Isn't that {a['h']} great?", f"Such {a['c'][2]} {a['sh']}!",
                f"Who wears {a['c'][1]} {a['b']} like that?", "Amazing!", f"Can you believe that {a['g']}?", "What a look!"]
        return " ".join(r.sample(pool, r.randint(2, 4)))

    fns = [kv, story, part, excl]
    rows = [(fns[s](attrs()), s) for s in range(4) for _ in range(per)]
    r.shuffle(rows)
    return [x[0] for x in rows], [x[1] for x in rows]


def _corpus(name: str, workdir: str) -> tuple[list[str], list[int] | None]:
    tests = Path(__file__).resolve().parents[1] / "tests" / "caption_gen" / "styles"
    sys.path.insert(0, str(tests))
    if name == "fixture4":
        from conftest import make_styled_captions

        return make_styled_captions(60, seed=7)
    if name == "generator5":
        from style_generator import generate

        return generate(60, seed=21)
    if name == "generator5-large":
        from style_generator import generate

        return generate(400, seed=22)
    if name == "alt4":
        return _alt_generator(80, seed=1)
    # synthetic benchmark captions (the demo's style source): no planted labels
    src = Path(workdir) / "synth" / "reid_raw.json"
    if not src.is_file():
        subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", "synth", "--out", str(src.parent),
                        "--identities", "60", "--images-per-identity", "4", "--seed", "0"], check=True,
                       capture_output=True)
    records = json.loads(src.read_text())
    return [c for r in records if r.get("split") == "train" for c in r["captions"]], None


def run_quality(corpus: str, workdir: str, root: str | None) -> dict:
    if root:  # measure an older tree: its packages shadow the editable install of this one
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__name__.lower()
                            and "editable" not in getattr(f, "__module__", "")]
        sys.path.insert(0, root)
    texts, planted = _corpus(corpus, workdir)
    from sklearn.metrics import adjusted_rand_score

    from caption_gen.styles.build import StylesConfig, build_styles

    out = Path(workdir) / f"quality-{corpus}-{'before' if root else 'after'}"
    t0 = time.perf_counter()
    res = build_styles(StylesConfig(report=False), out, texts=texts)
    prompts = [e["prompt"] for e in json.loads((out / "bank.json").read_text())]
    q = res.summary["quality"]
    return {"corpus": corpus, "code": "before" if root else "after", "texts": len(texts),
            "planted": len(set(planted)) if planted else None,
            "ari": float(adjusted_rand_score(planted, res.labels)) if planted else None,
            "clusters_found": q["clusters_raw"], "styles": res.n_styles, "merge": q.get("merge"),
            "prompts": prompts, "features": res.summary["features"].get("note") or res.summary["features"].get("clip"),
            "build_s": time.perf_counter() - t0}


def child(spec: dict) -> None:
    kind = spec["kind"]
    if kind == "quality":
        out = run_quality(spec["corpus"], spec["workdir"], spec.get("root"))
    elif kind == "cluster":
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
    ap.add_argument("--quality", action="store_true", help="style recovery / prompt distinctness (see docstring)")
    ap.add_argument("--baseline-root", help="unpacked older tree measured as the 'before' (quality mode)")
    corpora = ["fixture4", "generator5", "generator5-large", "alt4", "synthetic-benchmark"]
    ap.add_argument("--corpora", nargs="+", default=corpora, choices=corpora)
    ap.add_argument("--baseline-corpora", nargs="+", default=[c for c in corpora if c != "generator5-large"],
                    help="corpora the baseline runs on (its random-weight CLIP is slow on CPU)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    if args.quality:
        quality_main(args)
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


def quality_main(args: argparse.Namespace) -> None:
    from caption_gen.styles.prompts import SIMILARITY_BOUND, max_pairwise_similarity

    rows = []
    for corpus in args.corpora:
        roots = ([args.baseline_root] if args.baseline_root and corpus in args.baseline_corpora else []) + [None]
        for root in roots:
            spec = {"kind": "quality", "corpus": corpus, "workdir": args.workdir, "root": root}
            proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                                  text=True, timeout=args.timeout)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(json.dumps({"spec": spec, "error": proc.stderr[-800:]}), flush=True)
                continue
            r = json.loads(line[7:])
            sim, _ = max_pairwise_similarity(r["prompts"])
            r["prompt_similarity_max"] = sim
            r["identical_prompt_pairs"] = sum(a == b for i, a in enumerate(r["prompts"]) for b in r["prompts"][i + 1:])
            rows.append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "prompts"}, default=str), flush=True)
    print(f"\n| corpus | code | texts | planted | ARI | clusters found | styles | max prompt similarity "
          f"(bound {SIMILARITY_BOUND}) | identical prompt pairs |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ari = "–" if r["ari"] is None else f"{r['ari']:.2f}"
        print(f"| {r['corpus']} | {r['code']} | {r['texts']} | {r['planted'] or '–'} | {ari} | {r['clusters_found']} | "
              f"{r['styles']} | {r['prompt_similarity_max']:.2f} | {r['identical_prompt_pairs']} |")


if __name__ == "__main__":
    main()
