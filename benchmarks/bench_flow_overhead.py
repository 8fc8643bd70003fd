"""Flow overhead (issue 6 benchmarks): images/s of the ``build-corpus`` Prefect flow vs the captioning core
(``CaptionEngine.run``) on the same images, same config, same machine, in one run.

    .venv/bin/python benchmarks/bench_flow_overhead.py [--images 512] [--shard-size 64] [--repeats 2]
                                                       [--vllm-images 16] [--skip-vllm]

Both sides do the same work: discovery + hashing, decode, prompts, generation, validation, Parquet shards,
done markers and the manifest. The flow adds Prefect: flow/task runs against the ephemeral local API
(SQLite; started once before timing, its start-up time is printed separately), one task per shard, plan
files, the run summary and its markdown artifact. Target: flow ≥ 0.8× the core.

1. ``stub`` backend (instant, deterministic captions): the worst case for relative overhead.
2. the tiny random LLaVA through the real CPU vLLM engine (engine loaded before timing and shared by both
   sides through the per-process backend cache; 1 kind, 1 attempt, ``--vllm-tokens`` new tokens).
Best of ``--repeats`` for the stub (alternating direct/flow), one run each for vLLM. Two flow figures: end to
end (one ``run_flow`` call: flow-run creation, Prefect's end-of-run bookkeeping, engine release) and the flow
body (``summary.wall_s``: lock → plan → shard tasks → finalize → summary).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def _caption_cfg(images: Path, out: Path, model: dict[str, Any], *, kinds: list[str], shard: int,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"images": str(images), "out": str(out), "models": [model], "kinds": kinds, "shard_size": shard,
            "batch_size": shard, "progress": False, **(extra or {})}


def _direct(cap: dict[str, Any], *, release: bool = False) -> float:
    """images/s of ``CaptionEngine.run``; ``release``: also close the engine (as the flow does at its end)."""
    from caption_gen.backends.factory import close_all
    from caption_gen.captioning.config import CaptionRunConfig
    from caption_gen.captioning.engine import CaptionEngine

    cfg = CaptionRunConfig.model_validate(cap)
    t0 = time.perf_counter()
    summary = CaptionEngine(cfg).run()
    if release:
        close_all()
    dt = time.perf_counter() - t0
    return summary.images / dt


def _flow(cap: dict[str, Any], cfg_path: Path) -> tuple[float, float]:
    """(end-to-end images/s of one flow run incl. flow-run bookkeeping and engine release,
    images/s of the flow body: lock → plan → shard tasks → finalize → summary)."""
    import yaml

    from flows.registry import run_flow

    cfg_path.write_text(yaml.safe_dump({"caption": cap, "task": {"retry_delay_s": 1.0}}))
    t0 = time.perf_counter()
    summary = run_flow("build-corpus", cfg_path)
    dt = time.perf_counter() - t0
    assert summary["failed_shards"] == [], summary["failures"]
    return summary["images"] / dt, summary["images"] / summary["wall_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--shard-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--vllm-images", type=int, default=16)
    ap.add_argument("--vllm-tokens", type=int, default=16)
    ap.add_argument("--skip-vllm", action="store_true")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-flow-"))
    os.environ.setdefault("PREFECT_HOME", str(work / "prefect-home"))  # a private ephemeral API database
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from caption_gen.synth import render_dataset

    per_id = 4
    render_dataset(work / "synth", identities=max(1, args.images // per_id), images_per_identity=per_id, seed=0,
                   size=(128, 64))
    images = work / "synth" / "imgs"
    n = len(list(images.rglob("*.jpg")))
    results: dict[str, Any] = {"images": n, "shard_size": args.shard_size}

    stub = {"name": "stub", "backend": "stub"}
    kinds = ["static", "dynamic"]
    t0 = time.perf_counter()  # start Prefect's ephemeral API (untimed below): a 4-image warm-up flow
    warm = work / "warm"
    warm.mkdir()
    for p in sorted(images.rglob("*.jpg"))[:4]:
        (warm / p.name).write_bytes(p.read_bytes())
    _flow(_caption_cfg(warm, work / "warm-corpus", stub, kinds=kinds, shard=2), work / "warm.yaml")
    results["prefect_ephemeral_start_and_warmup_s"] = round(time.perf_counter() - t0, 1)

    direct, flow, body = [], [], []
    for r in range(args.repeats):
        direct.append(_direct(_caption_cfg(images, work / f"direct-{r}", stub, kinds=kinds, shard=args.shard_size)))
        f, b = _flow(_caption_cfg(images, work / f"flow-{r}", stub, kinds=kinds, shard=args.shard_size),
                     work / f"flow-{r}.yaml")
        flow.append(f)
        body.append(b)
        print(f"stub repeat {r}: direct {direct[-1]:.1f} images/s, flow {f:.1f} images/s (body {b:.1f})", flush=True)
    results["stub_direct_images_per_s"] = round(max(direct), 1)
    results["stub_flow_images_per_s"] = round(max(flow), 1)
    results["stub_flow_body_images_per_s"] = round(max(body), 1)
    results["stub_flow_over_direct"] = round(max(flow) / max(direct), 3)
    results["stub_flow_body_over_direct"] = round(max(body) / max(direct), 3)
    results["stub_shards"] = -(-n // args.shard_size)

    if not args.skip_vllm:
        from caption_gen.backends.factory import build_backend
        from caption_gen.backends.spec import ModelSpec
        from caption_gen.backends.tiny_vlm import build_tiny_vlm

        model = build_tiny_vlm(work / "tiny-llava", arch="llava")
        vmodel = {"name": "tiny-vllm", "backend": "vllm", "path": str(model), "dtype": "float32",
                  "gpu_memory_utilization": 0.1, "enforce_eager": True, "max_model_len": 1024,
                  "max_pixels": 128 * 64, "ignore_eos": True}
        vimages = work / "vllm-imgs"
        vimages.mkdir()
        for p in sorted(images.rglob("*.jpg"))[: args.vllm_images]:
            (vimages / f"{p.parent.name}_{p.name}").write_bytes(p.read_bytes())
        extra = {"sampling": {"max_tokens": args.vllm_tokens}, "retry": {"max_attempts": 1}}
        spec = ModelSpec.model_validate(vmodel)
        t0 = time.perf_counter()
        build_backend(spec)  # engine load before each side, untimed (factory cache)
        results["vllm_engine_start_s"] = round(time.perf_counter() - t0, 1)
        shard = max(1, args.vllm_images // 2)
        d = _direct(_caption_cfg(vimages, work / "vllm-direct", vmodel, kinds=["static"], shard=shard, extra=extra),
                    release=True)  # then closes the engine, as the flow does at its end
        build_backend(spec)
        f, b = _flow(_caption_cfg(vimages, work / "vllm-flow", vmodel, kinds=["static"], shard=shard, extra=extra),
                     work / "vllm-flow.yaml")
        results.update(vllm_images=len(list(vimages.iterdir())), vllm_tokens=args.vllm_tokens,
                       vllm_direct_images_per_s=round(d, 2), vllm_flow_images_per_s=round(f, 2),
                       vllm_flow_body_images_per_s=round(b, 2), vllm_flow_over_direct=round(f / d, 3),
                       vllm_flow_body_over_direct=round(b / d, 3))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
