"""Captioning engine throughput (issues 3 and 18), every side in its own fresh process.

    .venv/bin/python benchmarks/bench_caption_engine.py [--images 64] [--tokens 32] [--hf-images 8]
                                                        [--overhead-images 1000] [--captioner MODEL_DIR]

Why fresh processes: vLLM changes torch's thread settings in the process that builds an engine (a
transformers baseline run afterwards in the same process ran ~30x slower — the old 48x figure), and a
second engine in one process shares its caches. So the parent only prepares data and starts one child
per side (``--side``), each of which builds its backend, warms it up the same way (the first
``WARMUP`` requests, generated once and discarded) and times one call:

1. ``raw``  — the ``vllm`` backend's ``generate`` on exactly the requests the pipeline sends (recorded
   from a pipeline run against a recording stub: same messages, images as decoded, sampling, seeds);
2. ``pipeline`` — ``run_captioning`` (discovery, hashing, decode, prompts, generate, validate, Parquet
   shard) on the same images, 1 kind, 1 attempt, one batch, on its own engine;
3. ``hf``   — the ``transformers`` backend one image at a time (``hf_batch_size=1``, the public
   LUPerson-MLLM captioner's way) on the first ``--hf-images`` of the same requests;
4. ``overhead`` — ``run_captioning`` with the instant ``stub`` backend on one core.

Model 1: the tiny random LLaVA (:mod:`caption_gen.backends.tiny_vlm`) with ``ignore_eos`` (exactly
``--tokens`` new tokens for every side). Model 2 (``--captioner``): a trained captioner
(:mod:`caption_gen.captioner`), generating real EOS-terminated captions (token counts then differ per
caption; throughput is reported in captions/s and tokens/s).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WARMUP = 4


class _Recorder:
    """A backend that records the requests it is sent and answers instantly."""

    def __init__(self, name: str):
        self.name = name
        self.requests: list = []

    def generate(self, requests):
        from caption_gen.backends.base import GenerationResult

        self.requests.extend(requests)
        return [GenerationResult(r.request_id, "", 0, "stop") for r in requests]

    def close(self) -> None:
        pass


def _spec(model: Path, backend: str, ignore_eos: bool):
    from caption_gen.backends.spec import ModelSpec

    kw = {"max_model_len": 1024, "ignore_eos": ignore_eos}
    if backend == "transformers":
        kw["dtype"] = "float32"
    return ModelSpec(name=f"bench-{backend}", backend=backend, path=model, **kw)


def _run_cfg(images_dir: Path, out: Path, spec, tokens: int, batch: int):
    from caption_gen.captioning.config import CaptionRunConfig

    return CaptionRunConfig(images=str(images_dir), out=out, models=[spec], kinds=["static"], shard_size=batch,
                            batch_size=batch, sampling={"max_tokens": tokens}, retry={"max_attempts": 1},
                            progress=False)


def record_requests(images_dir: Path, work: Path, model: Path, tokens: int, batch: int) -> Path:
    """The pipeline's exact requests (through a recording backend), pickled."""
    from caption_gen.captioning.engine import run_captioning

    spec = _spec(model, "vllm", True)
    rec = _Recorder(spec.label)
    run_captioning(_run_cfg(images_dir, work / "recorded-corpus", spec, tokens, batch), backends={spec.label: rec})
    path = work / "requests.pkl"
    path.write_bytes(pickle.dumps(rec.requests))
    return path


def child(args: argparse.Namespace) -> dict:
    """One side, in this (fresh) process."""
    from caption_gen.backends.factory import build_backend

    model = Path(args.model)
    reqs = pickle.loads(Path(args.requests).read_bytes()) if args.requests else []
    out: dict = {"side": args.side}
    if args.side == "overhead":
        import pyarrow as pa
        import torch

        try:
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        except (AttributeError, OSError):
            pass
        torch.set_num_threads(1)
        pa.set_cpu_count(1)
        pa.set_io_thread_count(1)
        from caption_gen.backends.spec import ModelSpec
        from caption_gen.captioning.engine import run_captioning

        stub = ModelSpec(name="stub", backend="stub")
        t0 = time.perf_counter()
        s = run_captioning(_run_cfg(Path(args.images_dir), Path(args.work) / "oh-corpus", stub, 64, 256),
                           backends={"stub": build_backend(stub)})
        out["images_per_s"] = round(s.images / (time.perf_counter() - t0), 1)
        return out
    backend_name = "transformers" if args.side == "hf" else "vllm"
    spec = _spec(model, backend_name, args.ignore_eos)
    t0 = time.perf_counter()
    backend = build_backend(spec)
    out["start_s"] = round(time.perf_counter() - t0, 1)
    backend.generate(reqs[:WARMUP])  # the same warm-up on every side
    if args.side == "pipeline":
        from caption_gen.captioning.engine import run_captioning

        t0 = time.perf_counter()
        s = run_captioning(_run_cfg(Path(args.images_dir), Path(args.work) / f"pipe-{os.getpid()}", spec,
                                    args.tokens, len(reqs)), backends={spec.label: backend})
        dt = time.perf_counter() - t0
        out.update(images=s.images, seconds=round(dt, 3), captions_per_s=round(s.images / dt, 2),
                   accepted=s.accepted)
    else:
        sub = reqs[: args.hf_images] if args.side == "hf" else reqs
        t0 = time.perf_counter()
        res = backend.generate(sub)
        dt = time.perf_counter() - t0
        toks = sum(r.num_tokens for r in res)
        out.update(images=len(sub), seconds=round(dt, 3), captions_per_s=round(len(sub) / dt, 3),
                   output_tokens_per_s=round(toks / dt, 1), mean_tokens=round(toks / len(sub), 1),
                   finish_stop=sum(r.finish_reason == "stop" for r in res))
    backend.close()
    return out


def _spawn(args: argparse.Namespace, side: str, **kw) -> dict:
    cmd = [sys.executable, __file__, "--side", side, "--tokens", str(args.tokens), "--hf-images", str(args.hf_images)]
    for k, v in kw.items():
        if v is True:
            cmd.append(f"--{k.replace('_', '-')}")
        elif v is not None and v is not False:
            cmd += [f"--{k.replace('_', '-')}", str(v)]
    env = dict(os.environ, VLLM_TARGET_DEVICE=os.environ.get("VLLM_TARGET_DEVICE", "cpu"))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{") and '"side"' in ln]
    if proc.returncode or not lines:
        return {"side": side, "error": (proc.stderr or proc.stdout)[-1500:]}
    return json.loads(lines[-1])


def _model_block(args, work: Path, name: str, model: Path, images_dir: Path, ignore_eos: bool, hf: bool) -> dict:
    reqs = record_requests(images_dir, work / name, model, args.tokens, args.images)
    common = dict(model=model, requests=reqs, images_dir=images_dir, work=work / name, ignore_eos=ignore_eos)
    res = {"raw": _spawn(args, "raw", **common), "pipeline": _spawn(args, "pipeline", **common)}
    if hf:
        res["hf"] = _spawn(args, "hf", **common)
    raw, pipe = res["raw"], res["pipeline"]
    if "captions_per_s" in raw and "captions_per_s" in pipe:
        res["pipeline_over_raw"] = round(pipe["captions_per_s"] / raw["captions_per_s"], 3)
    if hf and "captions_per_s" in raw and "captions_per_s" in res["hf"]:
        res["engine_speedup"] = round(raw["captions_per_s"] / res["hf"]["captions_per_s"], 1)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--hf-images", type=int, default=8)
    ap.add_argument("--overhead-images", type=int, default=1000)
    ap.add_argument("--captioner", type=Path, help="a trained captioner folder: second model (EOS-terminated)")
    ap.add_argument("--skip-engines", action="store_true", help="only the overhead figure")
    # child mode
    ap.add_argument("--side", choices=["raw", "pipeline", "hf", "overhead"])
    ap.add_argument("--model")
    ap.add_argument("--requests")
    ap.add_argument("--images-dir")
    ap.add_argument("--work")
    ap.add_argument("--ignore-eos", action="store_true")
    args = ap.parse_args()
    if args.side:
        print(json.dumps(child(args)), flush=True)
        return

    from caption_gen.backends.tiny_vlm import build_tiny_vlm
    from caption_gen.synth import render_dataset

    work = Path(tempfile.mkdtemp(prefix="bench-caption-"))
    results: dict = {"images": args.images, "tokens": args.tokens, "hf_images": args.hf_images,
                     "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if not args.skip_engines:
        render_dataset(work / "synth", identities=max(1, args.images // 4), images_per_identity=4, seed=0,
                       val_fraction=0.0, test_fraction=0.0)
        images_dir = work / "synth" / "imgs"
        tiny = build_tiny_vlm(work / "tiny-llava", arch="llava")
        results["tiny_random_llava"] = _model_block(args, work, "tiny", tiny, images_dir, True, True)
        if args.captioner is not None:
            results["trained_captioner"] = _model_block(args, work, "captioner", args.captioner.absolute(),
                                                        images_dir, False, False)
    n = args.overhead_images
    render_dataset(work / "synth-oh", identities=max(1, n // 10), images_per_identity=10, seed=1)
    results["overhead_stub_1core"] = _spawn(args, "overhead", model=work, images_dir=work / "synth-oh" / "imgs",
                                            work=work)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
