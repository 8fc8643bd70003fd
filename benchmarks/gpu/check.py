"""The GPU check behind ``benchmarks/gpu/check.sh`` (see there). Prints one JSON object."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_qwen2vl_2b_shape(out: Path) -> Path:
    """Random-weight Qwen2-VL with Qwen2-VL-2B-Instruct's shape (1.5B text + 675M vision), own tokenizer."""
    import torch
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
    )
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    from caption_gen.backends.tiny_vlm import QWEN2VL_SPECIALS, QWEN2VL_TEMPLATE, _train_tokenizer

    tok = PreTrainedTokenizerFast(tokenizer_object=_train_tokenizer(QWEN2VL_SPECIALS, 2000), eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>", chat_template=QWEN2VL_TEMPLATE)
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN2VL_SPECIALS}
    cfg = Qwen2VLConfig(
        text_config=dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768,
                         rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]}, rope_theta=1000000.0,
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], tie_word_embeddings=True,
                         torch_dtype="bfloat16"),
        vision_config=dict(depth=32, embed_dim=1280, hidden_size=1536, num_heads=16, mlp_ratio=4, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, in_chans=3),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        torch_dtype="bfloat16",
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2VLForConditionalGeneration._from_config(cfg, torch_dtype=torch.bfloat16)
    model.save_pretrained(out)
    del model
    torch.cuda.empty_cache()
    proc = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=256 * 128),
                            tokenizer=tok, video_processor=Qwen2VLVideoProcessor(), chat_template=QWEN2VL_TEMPLATE)
    proc.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def check_vllm(work: Path, images: int, tokens: int) -> dict:
    from PIL import Image

    from caption_gen.backends.base import GenerationRequest
    from caption_gen.backends.spec import ModelSpec
    from caption_gen.backends.vllm_backend import VLLMBackend
    from caption_gen.captioning.config import CaptionRunConfig
    from caption_gen.captioning.engine import run_captioning
    from caption_gen.instructions.bank import InstructionSet
    from caption_gen.synth import render_dataset

    t0 = time.perf_counter()
    model = build_qwen2vl_2b_shape(work / "qwen2vl-2b-shape")
    build_s = time.perf_counter() - t0
    synth = work / "synth"
    render_dataset(synth, identities=images // 4, images_per_identity=4, seed=3, val_fraction=0, test_fraction=0)
    spec = ModelSpec(name="qwen2vl-2b-random", backend="vllm", path=model, dtype="bfloat16", max_model_len=2048,
                     ignore_eos=True, gpu_memory_utilization=0.85)
    t1 = time.perf_counter()
    backend = VLLMBackend(spec)
    start_s = time.perf_counter() - t1
    paths = sorted((synth / "imgs").rglob("*.jpg"))[:images]
    ins = InstructionSet.load()
    reqs = [GenerationRequest(f"r{i}", ins.render("static", image_id=str(i), seed=0).messages(),
                              image=Image.open(p).convert("RGB"), temperature=0.7, top_p=0.9, max_tokens=tokens, seed=i)
            for i, p in enumerate(paths)]
    backend.generate(reqs[:16])  # warm-up, same for both sides
    t2 = time.perf_counter()
    out = backend.generate(reqs)
    raw_s = time.perf_counter() - t2
    n_tok = sum(r.num_tokens for r in out)
    cfg = CaptionRunConfig(images=str(synth / "imgs"), out=work / "corpus", models=[spec], kinds=["static"],
                           shard_size=images, batch_size=images, sampling={"max_tokens": tokens},
                           retry={"max_attempts": 1}, progress=False)
    t3 = time.perf_counter()
    summary = run_captioning(cfg, backends={spec.label: backend})
    pipe_s = time.perf_counter() - t3
    backend.close()
    return {"model_build_s": round(build_s, 1), "engine_start_s": round(start_s, 1), "images": len(reqs),
            "tokens_per_caption": tokens, "raw_captions_per_s": round(len(reqs) / raw_s, 2),
            "raw_output_tokens_per_s": round(n_tok / raw_s, 1),
            "pipeline_captions_per_s": round(summary.images / pipe_s, 2),
            "pipeline_over_raw": round((summary.images / pipe_s) / (len(reqs) / raw_s), 3)}


def check_mamba() -> dict:
    import torch

    from training.models.bdam.selective_scan import (
        mamba_kernels_available,
        selective_scan,
        selective_scan_torch,
    )

    if not mamba_kernels_available():
        return {"error": "mamba_ssm is not installed (pip install -e '.[gpu]')"}
    torch.manual_seed(0)
    b, d, n, L = 8, 512, 16, 512
    dev = "cuda"
    u = torch.randn(b, d, L, device=dev)
    delta = torch.rand(b, d, L, device=dev) * 0.1
    A = -torch.rand(d, n, device=dev)
    B = torch.randn(b, n, L, device=dev)
    C = torch.randn(b, n, L, device=dev)
    D = torch.randn(d, device=dev)
    z = torch.randn(b, d, L, device=dev)
    bias = torch.randn(d, device=dev) * 0.1
    args = (u, delta, A, B, C, D, z, bias, True)
    k = selective_scan(*args, use_kernel=True)
    t = selective_scan_torch(*args)
    diff = float((k - t).abs().max())
    # padded batch: rows packed so padding follows the read positions -> prefix results unchanged
    keep = 300
    up = u.clone()
    up[:, :, keep:] = 0
    kp = selective_scan(up, *args[1:], use_kernel=True)
    pad_diff = float((kp[:, :, :keep] - k[:, :, :keep]).abs().max())

    def bench(fn, reps=20):
        fn()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        torch.cuda.synchronize()
        return (time.perf_counter() - t0) / reps

    tk = bench(lambda: selective_scan(*args, use_kernel=True))
    tt = bench(lambda: selective_scan_torch(*args))
    return {"shape": [b, d, n, L], "max_abs_diff": diff, "padded_prefix_max_abs_diff": pad_diff,
            "kernel_ms": round(tk * 1e3, 3), "torch_ms": round(tt * 1e3, 3), "kernel_speedup": round(tt / tk, 1)}


def check_nam(batch: int, steps: int) -> dict:
    import torch

    from training.losses.sdm import sdm_loss
    from training.models.clip_backbone import ClipBackbone
    from training.models.config import ModelConfig
    from training.nam.masking import masking_probabilities, sample_token_masking
    from training.nam.noise import token_noise

    dev = "cuda" if torch.cuda.is_available() else "cpu"  # CPU: only a dry run of the code path
    vocab = 49408
    model = ClipBackbone(ModelConfig(arch="ViT-B-16", image_size=(384, 128)), vocab).to(dev)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    images = torch.randn(batch, 3, 384, 128, device=dev)
    text = torch.randint(1, vocab - 2, (batch, 77), device=dev)
    text[:, 0] = vocab - 2
    text[:, 40] = vocab - 1
    text[:, 41:] = 0
    valid = torch.zeros_like(text, dtype=torch.bool)
    valid[:, 1:40] = True
    pids = torch.arange(batch, device=dev) // 2

    def step():
        with torch.autocast(dev, dtype=torch.bfloat16):
            img_tok, img_layer = model.image_tokens(images, return_layer=model.nam_layer)
            with torch.no_grad():  # NAM: token noise from layer-l tokens of the full caption (seed 002 eq. 2-4)
                full_layer = model.text_layer_tokens(text, model.nam_layer)
                noise = token_noise(model.project_text_tokens(full_layer),
                                    model.project_image_tokens(img_layer.detach()[:, 1:]), valid)
                probs = masking_probabilities(noise, valid)
            masked = sample_token_masking(text, probs, mask_token_id=vocab - 3)
            txt_tok, _ = model.text_tokens(masked.tokens)
            loss = sdm_loss(img_tok[:, 0], model.pool_text(txt_tok, masked.tokens), pids)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    dt = time.perf_counter() - t0
    return {"device": dev, "batch": batch, "steps": steps, "samples_per_s": round(batch * steps / dt, 1),
            "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if dev == "cuda" else None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--nam-batch", type=int, default=128)
    ap.add_argument("--nam-steps", type=int, default=20)
    ap.add_argument("--skip", default="", help="comma list of sections to skip (vllm,mamba,nam)")
    args = ap.parse_args()
    import torch

    result: dict = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "cuda": torch.cuda.is_available(),
                    "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory(prefix="pedes-gpu-check-") as tmp:
        for name, fn in (("mamba", check_mamba), ("nam", lambda: check_nam(args.nam_batch, args.nam_steps)),
                         ("vllm", lambda: check_vllm(Path(tmp), args.images, args.tokens))):
            if name in skip:
                continue
            _log(f"[check] {name} ...")
            t0 = time.perf_counter()
            try:
                result[name] = fn()
            except Exception as exc:  # noqa: BLE001 - a section reports its error, the others still run
                result[name] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-1500:]}
            result[name]["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
