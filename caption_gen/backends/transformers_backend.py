"""Plain Hugging Face ``generate`` backend: the reference path and the fallback without vLLM.

``AutoProcessor`` + ``AutoModelForImageTextToText`` (text-only requests go through the same model
with no images). ``spec.hf_batch_size`` images per ``generate`` call; the default 1 is how public
captioners (e.g. the LUPerson-MLLM captioner) run, and is the engine-speedup benchmark's baseline.
Each call is seeded with ``torch.manual_seed(request.seed)`` (batch: the first request's seed), so a
rerun on the same machine and versions gives the same text. Sampling: ``temperature <= 0`` →
greedy decoding. ``spec.ignore_eos`` → ``min_new_tokens = max_tokens`` (exactly that many new tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from caption_gen.backends.base import (
    GenerationRequest,
    GenerationResult,
    messages_with_image,
    resize_to_pixel_budget,
    resolve_sampling,
)
from caption_gen.backends.spec import ModelSpec
from pedes_core.errors import ConfigError


def _torch_dtype(name: str) -> Any:
    import torch

    if name in ("auto", ""):
        return "auto"
    try:
        return getattr(torch, {"half": "float16", "float": "float32"}.get(name, name))
    except AttributeError:
        raise ConfigError(f"unknown dtype {name!r} (use auto, float32, bfloat16 or float16)") from None


class TransformersBackend:
    """``model.generate`` on ``spec.hf_batch_size`` requests at a time."""

    def __init__(self, spec: ModelSpec):
        spec.check()
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.spec = spec
        self.name = spec.label
        self.device = torch.device(spec.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        try:
            self.processor = AutoProcessor.from_pretrained(spec.model_ref, trust_remote_code=spec.trust_remote_code)
            self.model = AutoModelForImageTextToText.from_pretrained(
                spec.model_ref, dtype=_torch_dtype(spec.dtype), trust_remote_code=spec.trust_remote_code
            ).to(self.device).eval()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"model {spec.label!r}: cannot load {spec.model_ref} with transformers ({exc})") from None
        tok = getattr(self.processor, "tokenizer", self.processor)
        if getattr(tok, "pad_token_id", None) is None:
            tok.pad_token = tok.eos_token
        tok.padding_side = "left"  # decoder-only batching
        self._tok = tok
        self._eos = {i for i in [tok.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)]
                     for i in (i if isinstance(i, list) else [i]) if i is not None}

    def _generate_chunk(self, chunk: Sequence[GenerationRequest]) -> list[GenerationResult]:
        import torch

        texts, images = [], []
        for r in chunk:
            msgs = messages_with_image(r.messages, {"type": "image"} if r.image is not None else None)
            texts.append(self.processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False))
            if r.image is not None:
                images.append(resize_to_pixel_budget(r.image.convert("RGB"), self.spec.max_pixels))
        if images and len(images) != len(chunk):
            raise ValueError("a transformers batch must be all-image or all-text (set hf_batch_size=1)")
        kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True}
        if images:
            kwargs["images"] = images
        inputs = self.processor(**kwargs).to(self.device)
        s = resolve_sampling(chunk[0])
        gen: dict[str, Any] = {"max_new_tokens": s.max_tokens, "pad_token_id": self._tok.pad_token_id}
        if s.temperature > 0:
            gen.update(do_sample=True, temperature=s.temperature, top_p=s.top_p)
        else:
            gen.update(do_sample=False)
        if self.spec.ignore_eos:
            gen["min_new_tokens"] = s.max_tokens
        if s.seed is not None:
            torch.manual_seed(s.seed)
        with torch.inference_mode():
            out = self.model.generate(**inputs, **gen)
        new = out[:, inputs["input_ids"].shape[1]:]
        results = []
        for r, ids in zip(chunk, new.tolist(), strict=True):
            pad = self._tok.pad_token_id
            while ids and ids[-1] == pad and pad not in self._eos:
                ids.pop()
            stopped = bool(ids) and ids[-1] in self._eos
            body = ids[:-1] if stopped else ids
            text = self._tok.decode(body, skip_special_tokens=True)
            results.append(GenerationResult(r.request_id, text, len(ids), "stop" if stopped else "length"))
        return results

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results: list[GenerationResult] = []
        step = self.spec.hf_batch_size
        for start in range(0, len(requests), step):
            chunk = list(requests[start : start + step])
            # requests with different sampling cannot share one generate call
            if len({(resolve_sampling(r).temperature, resolve_sampling(r).top_p, resolve_sampling(r).max_tokens)
                    for r in chunk}) > 1 or len({r.image is None for r in chunk}) > 1:
                for r in chunk:
                    results.extend(self._generate_chunk([r]))
            else:
                results.extend(self._generate_chunk(chunk))
        return results

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
