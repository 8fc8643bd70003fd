"""``build_backend``: one backend per distinct model spec per process (engines load once, reused)."""

from __future__ import annotations

import atexit
import threading

from caption_gen.backends.base import CaptionBackend
from caption_gen.backends.spec import ModelSpec
from pedes_core.errors import ConfigError

_CACHE: dict[str, CaptionBackend] = {}
_LOCK = threading.Lock()


def _construct(spec: ModelSpec) -> CaptionBackend:
    if spec.backend == "stub":
        from caption_gen.backends.stub import StubBackend

        return StubBackend(spec)
    if spec.backend == "vllm":
        from caption_gen.backends.vllm_backend import VLLMBackend

        return VLLMBackend(spec)
    if spec.backend == "transformers":
        from caption_gen.backends.transformers_backend import TransformersBackend

        return TransformersBackend(spec)
    if spec.backend == "openai":
        from caption_gen.backends.openai_backend import OpenAIBackend

        return OpenAIBackend(spec)
    raise ConfigError(f"unknown backend {spec.backend!r}")  # pragma: no cover - Literal-checked


def build_backend(spec: ModelSpec, *, cache: bool = True) -> CaptionBackend:
    """The backend for ``spec``; the same object for an equal spec within this process.

    ``spec.check()`` runs first (missing model folder, unset API-key variable → :class:`ConfigError`
    before anything loads). The cache key ignores ``name`` so two labels of one engine share it, but
    the returned backend's ``name`` is always ``spec.label``.
    """
    spec.check()
    if not cache:
        return _construct(spec)
    key = spec.cache_key()
    with _LOCK:
        backend = _CACHE.get(key)
        if backend is None:
            backend = _construct(spec)
            _CACHE[key] = backend
    if backend.name != spec.label:
        return _Renamed(backend, spec.label)
    return backend


class _Renamed:
    """A cached backend seen under another label (``name``); shares the engine."""

    def __init__(self, inner: CaptionBackend, name: str):
        self._inner = inner
        self.name = name

    def generate(self, requests):  # type: ignore[no-untyped-def]
        return self._inner.generate(requests)

    def close(self) -> None:
        return None  # the cached engine is closed by close_all()


def cached_backends() -> list[CaptionBackend]:
    """The backends built so far in this process."""
    return list(_CACHE.values())


def close_all() -> None:
    """Close and forget every cached backend (end of process / test session)."""
    with _LOCK:
        backends = list(_CACHE.values())
        _CACHE.clear()
    for b in backends:
        b.close()


atexit.register(close_all)  # shut vLLM worker processes down cleanly at interpreter exit
