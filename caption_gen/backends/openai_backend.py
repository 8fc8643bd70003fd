"""OpenAI-compatible HTTP backend (``vllm serve``, the project's :mod:`openai_server`, hosted APIs).

* images travel as base64 JPEG data URLs in an ``image_url`` content part, after downscaling to
  ``spec.max_pixels``;
* at most ``spec.concurrency`` requests are in flight (a thread pool over one ``httpx.Client``);
* each request has ``spec.timeout_s``; a timeout, a connection error, HTTP 408/409/429 or any 5xx is
  retried up to ``spec.retries`` times with exponential backoff (``backoff_s * 2**k``); other 4xx
  answers are not retried. A request that still fails becomes a :class:`GenerationResult` with
  ``error`` set (the engine retries / rejects it) — one bad request never fails the batch;
* the API key is read from the environment variable named by ``spec.api_key_env`` at call time and
  only put into the ``Authorization`` header; error texts never include headers;
* images and the key go to ``spec.api_base`` and nowhere else: the client ignores proxy variables of the
  environment (``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``, ``.netrc``: httpx ``trust_env=False``) unless
  the spec sets ``trust_env: true``; a proxy is used only when given explicitly (``proxy:``); redirects
  are never followed (a 3xx answer is an error naming where it pointed, not retried), so the
  ``Authorization`` header can only reach the configured base URL (DESIGN §3, backends).
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from caption_gen.backends.base import (
    GenerationRequest,
    GenerationResult,
    messages_with_image,
    resize_to_pixel_budget,
    resolve_sampling,
)
from caption_gen.backends.spec import ModelSpec

RETRY_STATUS = frozenset({408, 409, 429})
JPEG_QUALITY = 90


def image_data_url(image: Any, max_pixels: int | None = None) -> str:
    """A PIL image as a ``data:image/jpeg;base64,...`` URL (downscaled to ``max_pixels``)."""
    img = resize_to_pixel_budget(image.convert("RGB"), max_pixels)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def make_client(spec: ModelSpec) -> httpx.Client:
    """The HTTP client of one spec: no environment proxies (unless ``trust_env``), an explicit ``proxy``
    only, no redirects."""
    return httpx.Client(timeout=httpx.Timeout(spec.timeout_s), trust_env=spec.trust_env, proxy=spec.proxy,
                        follow_redirects=False)


class OpenAIBackend:
    """Chat completions against ``spec.api_base`` with bounded concurrency, timeouts and retries."""

    def __init__(self, spec: ModelSpec):
        spec.check()
        self.spec = spec
        self.name = spec.label
        self.model = spec.served_model or spec.hub or spec.label
        self.url = spec.api_base.rstrip("/") + "/chat/completions"  # type: ignore[union-attr]
        self._client: httpx.Client | None = make_client(spec)
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(max_workers=spec.concurrency,
                                                                   thread_name_prefix=f"openai-{self.name}")

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        part = None
        if request.image is not None:
            part = {"type": "image_url", "image_url": {"url": image_data_url(request.image, self.spec.max_pixels)}}
        s = resolve_sampling(request)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages_with_image(request.messages, part),
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
        }
        if s.seed is not None:
            body["seed"] = s.seed
        if self.spec.ignore_eos:
            body["ignore_eos"] = True  # vLLM extension
        return body

    def _headers(self, request: GenerationRequest) -> dict[str, str]:
        headers = {"X-Request-Id": request.request_id}
        key = self.spec.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _one(self, request: GenerationRequest) -> GenerationResult:
        body = self.payload(request)
        last = "no attempt made"
        for attempt in range(self.spec.retries + 1):
            if attempt:
                time.sleep(self.spec.backoff_s * (2 ** (attempt - 1)))
            client = self._client
            if client is None:
                return GenerationResult(request.request_id, "", 0, None, error=f"backend {self.name!r} was closed")
            try:
                resp = client.post(self.url, json=body, headers=self._headers(request))
            except httpx.TimeoutException:
                last = f"timeout after {self.spec.timeout_s:g}s ({self.url})"
                continue
            except httpx.TransportError as exc:
                last = f"connection error: {type(exc).__name__}: {exc}"
                continue
            if resp.is_redirect or 300 <= resp.status_code < 400:
                where = resp.headers.get("location", "?")
                return GenerationResult(request.request_id, "", 0, None,
                                        error=f"HTTP {resp.status_code} redirect to {where} not followed "
                                              f"(requests go only to {self.spec.api_base})")
            if resp.status_code >= 500 or resp.status_code in RETRY_STATUS:
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
                continue
            if resp.status_code >= 400:
                return GenerationResult(request.request_id, "", 0, None,
                                        error=f"HTTP {resp.status_code}: {resp.text[:200]}")
            try:
                data = resp.json()
                choice = data["choices"][0]
                text = choice["message"]["content"] or ""
                usage = data.get("usage") or {}
                ntok = int(usage.get("completion_tokens") or len(text.split()))
                return GenerationResult(request.request_id, text, ntok, choice.get("finish_reason"))
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                last = f"malformed response: {type(exc).__name__}: {exc}"
                continue
        return GenerationResult(request.request_id, "", 0, None,
                                error=f"{last} (gave up after {self.spec.retries + 1} attempt(s))")

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        if self._pool is None:
            raise RuntimeError(f"backend {self.name!r} was closed")
        return list(self._pool.map(self._one, requests))

    def close(self) -> None:
        pool, self._pool = self._pool, None
        client, self._client = self._client, None
        if pool is not None:
            pool.shutdown(wait=True)
        if client is not None:
            client.close()
