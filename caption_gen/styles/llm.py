"""Text-only LLM calls through the captioning backends (shared by the LLM neutralizer, the LLM style
prompt writer and the LLM template miner).

The backends (``caption_gen.backends``) expose ``CaptionBackend.generate(requests) -> results`` where a
request with ``image=None`` is a text-only generation and a result carries ``text``, ``num_tokens``,
``finish_reason`` and ``error``. :func:`generate_texts` builds those requests from prompt strings and
returns ``(text, None)`` for usable outputs or ``(None, reason)`` for failed ones (``error``,
``length`` — cut by the token limit, ``empty``), so callers can fall back per item.

Prompt texts live in ``templates/*.yaml`` (versioned data): keys ``version``, ``system``, ``user``
(a ``str.format`` template) and ``sampling`` (temperature, max_tokens ...).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from pedes_core.errors import InputError


@dataclass(frozen=True)
class PromptTemplate:
    """A versioned prompt loaded from ``templates/<name>``."""

    name: str
    version: str
    system: str | None
    user: str
    sampling: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""

    @classmethod
    def load(cls, name: str) -> PromptTemplate:
        import templates

        try:
            path = templates.path(name)
        except FileNotFoundError as exc:
            raise InputError(str(exc)) from None
        raw = path.read_text(encoding="utf-8")
        data = yaml.safe_load(raw)
        if not isinstance(data, dict) or not isinstance(data.get("user"), str):
            raise InputError(f"{path}: a prompt file needs a mapping with a 'user' string")
        return cls(
            name=name,
            version=str(data.get("version", "1")),
            system=data.get("system"),
            user=data["user"],
            sampling=dict(data.get("sampling") or {}),
            sha256=templates.sha256_text(raw),
        )

    def render(self, **values: Any) -> str:
        try:
            return self.user.format(**values)
        except KeyError as exc:
            raise InputError(f"templates/{self.name}: placeholder {exc} has no value") from None


@dataclass
class TextOnlyRequest:
    """Stand-in used only while ``caption_gen.backends.base`` is not importable (same core fields)."""

    request_id: str
    messages: list[dict[str, Any]]
    image: Any = None
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None


def _request_class() -> type:
    try:
        from caption_gen.backends.base import GenerationRequest  # the backends' interface
    except ImportError:
        return TextOnlyRequest
    return GenerationRequest


def request_prompt(request: Any) -> str:
    """The user prompt of a text-only request (for stub backends and logs)."""
    for name in ("messages",):
        msgs = getattr(request, name, None)
        if msgs:
            content = msgs[-1]["content"] if isinstance(msgs[-1], dict) else getattr(msgs[-1], "content", "")
            if isinstance(content, list):  # OpenAI-style content parts
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content)
    for name in ("prompt", "text"):
        val = getattr(request, name, None)
        if isinstance(val, str):
            return val
    raise TypeError(f"cannot find the prompt of {type(request).__name__}")


def build_request(prompt: str, *, system: str | None, index: int, **sampling: Any) -> Any:
    """One text-only ``GenerationRequest`` (``image=None``) from a prompt string.

    Fills whichever of the request's fields exist (``messages``/``prompt``/``text``, an id field,
    sampling fields), so this module follows the backends' dataclass without duplicating it.
    """
    cls = _request_class()
    names = _field_names(cls)
    kwargs: dict[str, Any] = {}
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    if "messages" in names:
        kwargs["messages"] = messages
    elif "prompt" in names:
        kwargs["prompt"] = prompt if not system else f"{system}\n\n{prompt}"
    elif "text" in names:
        kwargs["text"] = prompt if not system else f"{system}\n\n{prompt}"
    if "system" in names and "messages" not in names:
        kwargs["system"] = system
    if "image" in names:
        kwargs["image"] = None
    for id_name in ("request_id", "id", "key"):
        if id_name in names:
            kwargs[id_name] = f"text-{index}"
            break
    sampling_names = {k for k in sampling if k in names}
    for k in sampling_names:
        kwargs[k] = sampling[k]
    rest = {k: v for k, v in sampling.items() if k not in sampling_names}
    if rest and "sampling" in names:
        kwargs["sampling"] = _sampling_value(cls, rest)
    return cls(**kwargs)


def _field_names(cls: type) -> set[str]:
    if dataclasses.is_dataclass(cls):
        return {f.name for f in dataclasses.fields(cls)}
    if hasattr(cls, "model_fields"):
        return set(cls.model_fields)
    return set(inspect.signature(cls).parameters)


def _sampling_value(request_cls: type, values: dict[str, Any]) -> Any:
    try:
        from caption_gen.backends import base

        sp = getattr(base, "SamplingParams", None)
        if sp is not None:
            names = _field_names(sp)
            return sp(**{k: v for k, v in values.items() if k in names})
    except ImportError:  # pragma: no cover - backends missing
        pass
    return values


def generate_texts(
    backend: Any,
    prompts: Sequence[str],
    *,
    system: str | None = None,
    batch_size: int = 64,
    **sampling: Any,
) -> list[tuple[str | None, str | None]]:
    """Run ``prompts`` through ``backend.generate`` in batches; aligned ``(text, failure_reason)`` pairs."""
    out: list[tuple[str | None, str | None]] = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        requests = [build_request(p, system=system, index=start + i, **sampling) for i, p in enumerate(chunk)]
        results = backend.generate(requests)
        if len(results) != len(requests):
            raise RuntimeError(f"backend returned {len(results)} results for {len(requests)} requests")
        for res in results:
            error = getattr(res, "error", None)
            text = getattr(res, "text", None)
            if error:
                out.append((None, "error"))
            elif getattr(res, "finish_reason", None) == "length":
                out.append((None, "length"))
            elif not text or not str(text).strip():
                out.append((None, "empty"))
            else:
                out.append((str(text), None))
    return out
