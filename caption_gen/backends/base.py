"""The backend interface shared by every captioning backend (CAPTION_API.md contract).

Messages follow the OpenAI chat shape: ``[{"role": "system", "content": str}, {"role": "user",
"content": str}]``. The image is *not* inside the messages: each backend inserts it into the first
user turn in its own format (vLLM ``image_pil`` part, OpenAI ``image_url`` data URL, HF ``{"type":
"image"}`` + processor images) via :func:`messages_with_image`. Text-only requests (``image=None``,
used by the style tools) go through unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from PIL import Image

#: Sampling values used when neither the request nor the model spec sets one.
DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 0.9
DEFAULT_MAX_TOKENS = 128


@dataclass
class GenerationRequest:
    """One chat completion to run: messages, an optional image and its sampling params."""

    request_id: str
    messages: list[dict[str, Any]]
    image: Image.Image | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    #: free-form labels (``kind``, ``image_id``, ...) for stub backends and logs; never sent to a model.
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class GenerationResult:
    """The outcome of one request. ``error`` is set (and ``text`` empty) when this request failed."""

    request_id: str
    text: str
    num_tokens: int
    finish_reason: str | None
    error: str | None = None


@runtime_checkable
class CaptionBackend(Protocol):
    """What the captioning engine needs from a backend."""

    name: str

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Results aligned with ``requests`` (same length, same order)."""
        ...

    def close(self) -> None:
        """Release the engine / connections (idempotent)."""
        ...


@dataclass(frozen=True)
class ResolvedSampling:
    """Sampling values of one request after defaults are applied."""

    temperature: float
    top_p: float
    max_tokens: int
    seed: int | None


def resolve_sampling(request: GenerationRequest) -> ResolvedSampling:
    """Fill a request's unset sampling fields with the module defaults."""
    return ResolvedSampling(
        temperature=DEFAULT_TEMPERATURE if request.temperature is None else float(request.temperature),
        top_p=DEFAULT_TOP_P if request.top_p is None else float(request.top_p),
        max_tokens=DEFAULT_MAX_TOKENS if request.max_tokens is None else int(request.max_tokens),
        seed=request.seed,
    )


def resize_to_pixel_budget(image: Image.Image, max_pixels: int | None) -> Image.Image:
    """Downscale ``image`` (aspect kept, bicubic) so that ``width * height <= max_pixels``.

    Done on the client side before submission: CPU-side preprocessing of large images is a known
    throughput cap of vLLM's multimodal path, and a pedestrian crop needs only a few dozen visual
    tokens. Images already within budget (or ``max_pixels=None``) are returned unchanged.
    """
    if max_pixels is None or max_pixels <= 0:
        return image
    w, h = image.size
    if w * h <= max_pixels:
        return image
    scale = math.sqrt(max_pixels / float(w * h))
    nw, nh = max(1, math.floor(w * scale)), max(1, math.floor(h * scale))
    while nw * nh > max_pixels:  # floor rounding can still overshoot by a row/column
        if nw >= nh:
            nw -= 1
        else:
            nh -= 1
    return image.resize((nw, nh), Image.Resampling.BICUBIC)


def message_text(content: Any) -> str:
    """The text of a message ``content`` (a string or a list of OpenAI-style parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return str(content)


def messages_with_image(messages: Sequence[dict[str, Any]], image_part: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Copy ``messages`` with ``image_part`` placed before the text of the first user turn.

    Every user turn's content becomes a list of parts (``{"type": "text", "text": ...}``); system
    and assistant turns keep string content. ``image_part=None`` only normalises the user turns.
    """
    out: list[dict[str, Any]] = []
    placed = image_part is None
    for msg in messages:
        role = msg.get("role")
        if role != "user":
            out.append({"role": role, "content": message_text(msg.get("content", ""))})
            continue
        content = msg.get("content", "")
        parts = (
            [dict(p) for p in content]
            if isinstance(content, list)
            else [{"type": "text", "text": str(content)}]
        )
        if not placed:
            parts.insert(0, image_part)
            placed = True
        out.append({"role": "user", "content": parts})
    if not placed:
        raise ValueError("request has an image but no user message to attach it to")
    return out


def error_results(requests: Sequence[GenerationRequest], error: str) -> list[GenerationResult]:
    """One failed result per request, all carrying ``error``."""
    return [GenerationResult(r.request_id, "", 0, None, error=error) for r in requests]
