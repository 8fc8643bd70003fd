"""``CaptionRunConfig``: everything one ``pedes caption`` run needs (DESIGN §3; README "Configuration reference").

Loaded with :func:`pedes_core.configuration.load_config` (YAML file + CLI flags as defaults +
``--set`` overrides). Several ``models`` × several ``kinds`` → every (image, kind, model) caption once.
The resolved config is saved next to the corpus; it never contains an API key (only the NAME of the
environment variable, ``ModelSpec.api_key_env``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic.functional_validators import BeforeValidator

from caption_gen.backends.spec import ModelSpec
from caption_gen.validation.policy import ValidationPolicy
from pedes_core.configuration import ConfigModel, ConfigPath


def _resolve_source(value: Any, info: ValidationInfo) -> Any:
    """An image source (folder, list file, glob, fsspec URL) as a string; a relative local one resolves
    like every :data:`~pedes_core.configuration.ConfigPath` (against the YAML file's directory, or the
    current directory for command-line values)."""
    if value is None:
        return None
    text = str(value)
    if "://" in text:
        return text
    p = Path(text).expanduser()
    if p.is_absolute():
        return str(p)
    base = (info.context or {}).get("base_dir")
    return str(Path(base) / p if base else p.absolute())


#: An image source: kept a string (it may be a URL or a glob), relative local values resolved.
SourcePath = Annotated[str, BeforeValidator(_resolve_source)]

#: Caption kinds a run can generate (``human`` is import-only).
GENERATED_KINDS: tuple[str, ...] = ("static", "dynamic", "identity", "clothing")

__all__ = ["GENERATED_KINDS", "CaptionRunConfig", "ModelSpec", "RetryPolicy", "SamplingOverrides"]


class SamplingOverrides(ConfigModel):
    """Run-wide sampling values; ``None`` keeps the instruction file's per-kind default."""

    temperature: float | None = Field(None, ge=0.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)


class RetryPolicy(ConfigModel):
    """Regeneration of rejected captions and of failed backend batches."""

    #: total generation attempts per caption (1 = no regeneration); attempt k uses seed + k - 1.
    max_attempts: int = Field(3, ge=1)
    #: temperature added per extra attempt (0 = keep the temperature), capped at ``max_temperature``.
    temperature_bump: float = Field(0.1, ge=0.0)
    max_temperature: float = Field(1.5, ge=0.0)
    #: re-submissions of a batch whose ``generate`` call raised, before its images are rejected.
    batch_retries: int = Field(1, ge=0)
    #: deadline of one backend ``generate`` call in seconds; a call past it counts as a failed batch
    #: (re-submitted, then rejected as ``generation:error``). None = no deadline.
    call_timeout_s: float | None = Field(600.0, gt=0)
    #: a shard whose share of ``generation:error`` jobs exceeds this is *failed*, not done (a backend
    #: outage is not finished work): nothing of it is written and the run stops with an error naming the
    #: cause; the rerun redoes it. Below the share the shard is done and a rerun retries only those jobs.
    max_generation_error_share: float = Field(0.5, ge=0.0, le=1.0)


class CaptionRunConfig(ConfigModel):
    """One captioning run."""

    #: image source: a folder (walked recursively), a list file or a glob; local path or fsspec URL.
    images: SourcePath
    #: root that ``image_path`` is relative to (default: ``images`` when it is a folder).
    image_root: SourcePath | None = None
    out: ConfigPath
    #: corpus name in the manifest (default: the output folder's name).
    name: str | None = None
    description: str | None = None
    models: list[ModelSpec] = Field(min_length=1)
    kinds: list[str] = Field(default_factory=lambda: ["static", "dynamic"], min_length=1)
    styled: bool = False
    style_bank: ConfigPath | None = None
    instructions: ConfigPath | None = None
    templates: ConfigPath | None = None
    shard_size: int = Field(256, ge=1)
    #: requests per backend ``generate`` call.
    batch_size: int = Field(64, ge=1)
    seed: int = 0
    sampling: SamplingOverrides = Field(default_factory=SamplingOverrides)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    validation: ValidationPolicy = Field(default_factory=ValidationPolicy)
    #: decompression-bomb guard for decoding (pixels).
    max_image_pixels: int = Field(40_000_000, ge=1)
    progress: bool = True

    @field_validator("kinds", mode="before")
    @classmethod
    def _split_kinds(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        unknown = [k for k in value if k not in GENERATED_KINDS]
        if unknown:
            raise ValueError(f"unknown caption kind(s) {unknown} (known: {', '.join(GENERATED_KINDS)})")
        if len(set(value)) != len(value):
            raise ValueError(f"kinds listed twice: {value}")
        return value

    @model_validator(mode="after")
    def _unique_labels(self) -> CaptionRunConfig:
        labels = [m.label for m in self.models]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"two model specs share the model name {dup}; give each a distinct 'name'")
        if self.styled and self.style_bank is None:
            raise ValueError("styled: true needs 'style_bank' (a JSON list of style prompts or a style bank)")
        return self

    @property
    def corpus_name(self) -> str:
        return self.name or self.out.name


def model_flag_spec(model: str | None, backend: str | None, api_base: str | None = None) -> dict[str, Any] | None:
    """The one-model spec of the ``--model/--backend/--api-base`` quick-start flags (None when not given).

    ``--model`` is a local folder when it exists or looks like a path (starts with ``/``, ``.``, ``~`` or
    has more than one ``/``) — a missing folder is then a config error — otherwise a hub name
    (``org/name``), handed to vLLM/transformers as is. For ``openai`` it is the served model name.
    """
    if model is None and backend is None and api_base is None:
        return None
    from pathlib import Path

    spec: dict[str, Any] = {"backend": backend or "vllm"}
    if api_base is not None:
        spec["api_base"] = api_base
    if model is None:
        return spec
    if spec["backend"] == "openai":
        spec["served_model"] = model
        spec["name"] = model
        return spec
    p = Path(model).expanduser()
    if p.exists() or model.startswith(("/", ".", "~")) or model.count("/") > 1:
        spec["path"] = str(p.absolute())
    else:
        spec["hub"] = model
    return spec


#: flags that hold paths (resolved against the current directory before they meet the file's values).
_PATH_FLAGS = ("images", "image_root", "out", "style_bank", "instructions", "templates")


class _CwdInfo:
    context = None


def load_caption_config(
    path: str | None = None,
    *,
    flags: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
) -> CaptionRunConfig:
    """Config file ← explicit CLI flags (win over the file) ← ``--set`` overrides, through
    :func:`pedes_core.configuration.load_config` (one loader, one path rule: values written in the file
    resolve against the file's directory, command-line values against the current directory — the image
    source and path flags are made absolute here first). Any problem raises
    :class:`~pedes_core.errors.ConfigError` naming the file/flag and field."""
    from pedes_core.configuration import load_config

    given = {k: v for k, v in (flags or {}).items() if v is not None}
    for key in _PATH_FLAGS:  # command-line values: relative to the current directory, not the file
        if key in given:
            given[key] = _resolve_source(given[key], _CwdInfo())
    return load_config(CaptionRunConfig, path, overrides or [], flags=given)
