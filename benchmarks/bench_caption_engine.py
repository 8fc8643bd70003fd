"""Captioning engine throughput (issue 3 benchmarks), all figures from one run on the same machine.

    .venv/bin/python benchmarks/bench_caption_engine.py [--images 64] [--tokens 32] [--hf-images 8]
                                                        [--overhead-images 1000]

Model: the tiny random LLaVA of :mod:`caption_gen.backends.tiny_vlm` (fp32), the same prompts (the
``static`` instruction) and exactly ``--tokens`` new tokens per caption (``ignore_eos`` /
``min_new_tokens``) for every backend. Images: the project's synthetic pedestrians (256×128 JPEGs).

1. engine speedup = captions/s of the ``vllm`` backend (one batched ``LLM.chat`` over all images) vs the
   ``transformers`` backend generating one image at a time (``hf_batch_size=1``, the way the public
   LUPerson-MLLM captioner works) on ``--hf-images`` of the same requests. Target >= 50x.
2. pipeline efficiency = ``CaptionEngine`` images/s (discovery, hashing, decode, prompts, generation,
   validation, Parquet shard writing; 1 kind, 1 attempt, one batch) vs the raw engine's images/s on the
   same batch (requests pre-built, images pre-decoded). Target ratio >= 0.67.
3. overhead alone = ``CaptionEngine`` with the instant ``stub`` backend (decode + prompt + validate + write),
   images/s on one core (torch/pyarrow pinned to 1 thread, CPU affinity 1 core). Target >= 500/s.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def _requests(images, instruction_set, tokens):
    from caption_gen.backends.base import GenerationRequest

    reqs = []
    for i, img in enumerate(images):
        ins = instruction_set.render("static", image_id=f"img{i}", seed=0)
        reqs.append(GenerationRequest(f"img{i}|static|bench|a1", ins.messages(), image=img, temperature=0.7,
                                      top_p=0.9, max_tokens=tokens, seed=i))
    return reqs


def _pipeline(images_dir: Path, out: Path, spec, backend, *, tokens: int, batch: int, kinds=("static",)) -> float:
    from caption_gen.captioning.config import CaptionRunConfig
    from caption_gen.captioning.engine import run_captioning

    cfg = CaptionRunConfig(images=str(images_dir), out=out, models=[spec], kinds=list(kinds), shard_size=batch,
                           batch_size=batch, sampling={"max_tokens": tokens}, retry={"max_attempts": 1},
                           progress=False)
    t0 = time.perf_counter()
    summary = run_captioning(cfg, backends={spec.label: backend})
    total = time.perf_counter() - t0
    markers = sorted((out / "shards" / "_done").glob("*.json"))
    gen = sum(json.loads(m.read_text()).get("extra", {}).get("generation_seconds", 0.0) for m in markers)
    print(f"pipeline {spec.label}: {summary.images} images in {total:.2f}s (generate+validate {gen:.2f}s)")
    return summary.images / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--hf-images", type=int, default=8)
    ap.add_argument("--overhead-images", type=int, default=1000)
    ap.add_argument("--skip-engines", action="store_true", help="only the overhead figure")
    args = ap.parse_args()

    from PIL import Image

    from caption_gen.backends.factory import build_backend
    from caption_gen.backends.spec import ModelSpec
    from caption_gen.backends.tiny_vlm import build_tiny_vlm
    from caption_gen.instructions.bank import InstructionSet
    from caption_gen.synth import render_dataset

    work = Path(tempfile.mkdtemp(prefix="bench-caption-"))
    results: dict = {}
    instr = InstructionSet.load()

    if not args.skip_engines:
        model = build_tiny_vlm(work / "tiny-llava", arch="llava")
        per_id = 4
        render_dataset(work / "synth", identities=max(1, args.images // per_id), images_per_identity=per_id, seed=0)
        imgs_dir = work / "synth" / "imgs"
        paths = sorted(imgs_dir.rglob("*.jpg"))[: args.images]
        images = [Image.open(p).convert("RGB") for p in paths]
        reqs = _requests(images, instr, args.tokens)

        vspec = ModelSpec(name="tiny-vllm", backend="vllm", path=model, dtype="float32", gpu_memory_utilization=0.1,
                          enforce_eager=True, max_model_len=1024, ignore_eos=True)
        t0 = time.perf_counter()
        vllm = build_backend(vspec)
        results["vllm_engine_start_s"] = round(time.perf_counter() - t0, 1)
        vllm.generate(reqs[:4])  # warm-up
        t0 = time.perf_counter()
        out = vllm.generate(reqs)
        dt_v = time.perf_counter() - t0
        assert all(r.num_tokens == args.tokens for r in out)
        results["vllm_batched_captions_per_s"] = round(len(reqs) / dt_v, 2)

        hspec = ModelSpec(name="tiny-hf", backend="transformers", path=model, dtype="float32", ignore_eos=True)
        hf = build_backend(hspec)
        hf.generate(reqs[:1])  # warm-up
        sub = reqs[: args.hf_images]
        t0 = time.perf_counter()
        out = hf.generate(sub)
        dt_h = time.perf_counter() - t0
        assert all(r.num_tokens == args.tokens for r in out)
        results["transformers_one_at_a_time_captions_per_s"] = round(len(sub) / dt_h, 3)
        results["engine_speedup"] = round((len(reqs) / dt_v) / (len(sub) / dt_h), 1)

        # pipeline vs raw engine on the same batch (fresh corpus; same engine object)
        raw_ips = len(reqs) / dt_v
        pipe_dir = work / "pipe-imgs"
        pipe_dir.mkdir()
        for p in paths:
            (pipe_dir / f"{p.parent.name}_{p.name}").write_bytes(p.read_bytes())
        pipe_ips = _pipeline(pipe_dir, work / "pipe-corpus", vspec, vllm, tokens=args.tokens, batch=len(reqs))
        results["pipeline_images_per_s"] = round(pipe_ips, 2)
        results["raw_engine_images_per_s"] = round(raw_ips, 2)
        results["pipeline_over_raw"] = round(pipe_ips / raw_ips, 2)
        vllm.close()

    # overhead alone: stub backend, one core
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    except (AttributeError, OSError):
        pass
    import pyarrow as pa
    import torch

    torch.set_num_threads(1)
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    n = args.overhead_images
    render_dataset(work / "synth-oh", identities=max(1, n // 10), images_per_identity=10, seed=1)
    stub = ModelSpec(name="stub", backend="stub")
    ips = _pipeline(work / "synth-oh" / "imgs", work / "oh-corpus", stub, build_backend(stub), tokens=64, batch=256)
    results["overhead_images_per_s_stub_1core"] = round(ips, 1)
    results["overhead_images"] = n
    results.update(images=args.images, tokens=args.tokens, hf_images=args.hf_images)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
