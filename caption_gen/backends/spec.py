"""``ModelSpec``: one captioning model in a run config (DESIGN.md §3).

A model is given by a local ``path`` (resolved against the config file's directory) or a ``hub``
name; nothing is downloaded by the project itself — a hub name is handed to vLLM/transformers as is.
``trust_remote_code`` is off unless the config turns it on. API keys are never stored: ``api_key_env``
names the environment variable that holds the key, and the key is read only when a request is sent.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, model_validator

from pedes_core.configuration import ConfigModel, ConfigPath
from pedes_core.errors import ConfigError

BackendName = Literal["vllm", "openai", "transformers", "stub"]

#: vLLM reserves encoder memory for the largest allowed multimodal input: one image, no video.
DEFAULT_LIMIT_MM: dict[str, int] = {"image": 1, "video": 0}


class ModelSpec(ConfigModel):
    """How to build one backend. ``label`` (``name``, else the path's folder name / hub name) is the
    value written to the corpus ``model`` column."""

    name: str | None = None
    backend: BackendName = "vllm"
    path: ConfigPath | None = None
    hub: str | None = None
    trust_remote_code: bool = False
    #: "auto": the checkpoint's dtype on a GPU, float32 on a CPU-only machine.
    dtype: str = "auto"
    max_model_len: int = Field(2048, ge=64)
    #: share of GPU memory vLLM may use (default 0.9). On a CPU-only machine vLLM reads it as a share of
    #: *RAM*; there, unless it is set explicitly, the KV cache is sized by ``kv_cache_gib`` instead.
    gpu_memory_utilization: float | None = Field(None, gt=0.0, le=1.0)
    #: CPU only: KV-cache size in GiB (default: min(1 GiB, a quarter of the available memory)).
    kv_cache_gib: float | None = Field(None, gt=0.0)
    #: None: eager on a CPU-only machine (no graph capture/compile), CUDA graphs on a GPU.
    enforce_eager: bool | None = None
    limit_mm_per_prompt: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_LIMIT_MM))
    mm_processor_kwargs: dict[str, Any] = Field(default_factory=dict)
    #: further ``vllm.LLM(...)`` keyword arguments (e.g. ``kv_cache_memory_bytes``, ``seed``).
    engine_args: dict[str, Any] = Field(default_factory=dict)
    #: client-side pixel budget: images are downscaled to at most this many pixels before submission.
    max_pixels: int | None = Field(None, ge=1)
    #: generate exactly ``max_tokens`` new tokens (benchmarks only: equal work per backend).
    ignore_eos: bool = False
    # --- openai backend ---
    api_base: str | None = None
    #: model name sent in the request (default: ``hub``, else ``label``).
    served_model: str | None = None
    #: NAME of the environment variable that holds the API key (never the key itself).
    api_key_env: str | None = None
    concurrency: int = Field(8, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    retries: int = Field(3, ge=0)
    backoff_s: float = Field(0.5, ge=0)
    #: an explicit HTTP(S) proxy URL for the endpoint (None: none; environment proxies are never used
    #: unless ``trust_env``), so images and the key go only to ``api_base`` or this proxy
    proxy: str | None = None
    #: honour ``HTTP(S)_PROXY``/``ALL_PROXY``/``.netrc`` from the environment (off: they are ignored)
    trust_env: bool = False
    # --- transformers backend ---
    #: images per ``generate`` call (1 = one image at a time, the public captioners' way).
    hf_batch_size: int = Field(1, ge=1)
    device: str | None = None
    # --- stub backend ---
    #: per-kind caption patterns for the stub backend (override its built-in good captions).
    stub_captions: dict[str, list[str]] | None = None

    @model_validator(mode="after")
    def _check_source(self) -> ModelSpec:
        if self.backend in ("vllm", "transformers"):
            if self.path is None and self.hub is None:
                raise ValueError(f"backend {self.backend!r} needs 'path' (a local model folder) or 'hub'")
            if self.path is not None and not self.path.exists():
                raise ValueError(f"model path does not exist: {self.path}")
        if self.backend == "openai" and not self.api_base:
            raise ValueError("backend 'openai' needs 'api_base' (e.g. http://127.0.0.1:8000/v1)")
        if (self.proxy is not None or self.trust_env) and self.backend != "openai":
            raise ValueError(f"'proxy'/'trust_env' apply to the openai backend only, not {self.backend!r}")
        if self.api_key_env is not None and not self.api_key_env.replace("_", "").isalnum():
            raise ValueError("api_key_env must be an environment variable NAME, not a key")
        return self

    @property
    def label(self) -> str:
        """The corpus ``model`` value of this spec."""
        if self.name:
            return self.name
        if self.path is not None:
            return self.path.name or str(self.path)
        if self.hub:
            return self.hub
        return f"{self.backend}:{self.served_model or 'default'}"

    @property
    def model_ref(self) -> str:
        """What to hand to vLLM / transformers: the local path, else the hub name."""
        return str(self.path) if self.path is not None else str(self.hub)

    def check(self) -> None:
        """Re-check, at build time, what may have changed since the config was loaded.

        Raises :class:`ConfigError` for a model folder that disappeared or an API-key variable that
        is not set — before any generation starts."""
        if self.backend in ("vllm", "transformers") and self.path is not None and not self.path.exists():
            raise ConfigError(f"model {self.label!r}: model path does not exist: {self.path}")
        if self.api_key_env is not None and not os.environ.get(self.api_key_env):
            raise ConfigError(f"model {self.label!r}: environment variable {self.api_key_env} (api_key_env) is not set")

    def api_key(self) -> str | None:
        """The API key from the environment (read at call time; never stored or logged)."""
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def cache_key(self) -> str:
        """Identity of the engine this spec builds (for the per-process cache)."""
        return self.model_dump_json(exclude={"name"})
