"""Typed configuration: pydantic models loaded from YAML, with ``key.sub=value`` CLI overrides.

Rules (documented in the README's config reference):

* every config model derives from :class:`ConfigModel`, which forbids unknown keys;
* a relative path written in a YAML file is resolved against that file's directory, a relative
  path given as a CLI override against the current directory (so a recipe runs from anywhere);
* any problem raises :class:`~pedes_core.errors.ConfigError` naming the file (or ``--set``) and
  the dotted field, before any work starts; the CLI turns it into exit status 2;
* :func:`save_resolved` writes the fully resolved config next to the outputs it produced.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo
from pydantic.functional_validators import AfterValidator, BeforeValidator

from pedes_core.errors import ConfigError

T = TypeVar("T", bound="ConfigModel")

RESOLVED_CONFIG_NAME = "config.resolved.yaml"


class ConfigModel(BaseModel):
    """Base of every config section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def _resolve_relative(value: Any, info: ValidationInfo) -> Any:
    if value is None or isinstance(value, Path) and value.is_absolute():
        return value
    if isinstance(value, str) and "://" in value:  # fsspec URL: leave untouched
        return value
    p = Path(value).expanduser()
    if p.is_absolute():
        return p
    base = (info.context or {}).get("base_dir") if info.context else None
    return (Path(base) / p) if base else p.absolute()


def _must_exist(value: Any) -> Any:
    if isinstance(value, Path) and not value.exists():
        raise ValueError(f"path does not exist: {value}")
    return value


#: A filesystem path; relative values resolve against the YAML file's directory.
ConfigPath = Annotated[Path, BeforeValidator(_resolve_relative)]
#: Like :data:`ConfigPath`, and the path must exist when the config is loaded.
ExistingPath = Annotated[Path, BeforeValidator(_resolve_relative), AfterValidator(_must_exist)]


def parse_overrides(overrides: Iterable[str]) -> dict[str, Any]:
    """Turn ``["train.lr=1e-4", "kinds=[static,dynamic]"]`` into a nested dict.

    Values are parsed as YAML scalars/flow collections, so numbers, booleans, lists and ``null``
    work as in the file.
    """
    nested: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE (for example train.epochs=3)")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set {item!r}: empty key segment")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: value is not valid YAML ({exc})") from None
        cursor = nested
        parts = key.split(".")
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
            if not isinstance(cursor, dict):
                raise ConfigError(f"--set {item!r}: {part!r} was already set to a scalar")
        cursor[parts[-1]] = value
    return nested


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: mappings merge, everything else in ``update`` replaces."""
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration ({exc.error_count()} problem(s))"]
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        got = err.get("input")
        shown = "" if err["type"] in ("missing", "extra_forbidden") else f" (got {got!r})"
        lines.append(f"  field '{field}': {msg}{shown}")
    return "\n".join(lines)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def load_config(
    model: type[T],
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> T:
    """Load ``model`` from an optional YAML file, then apply ``key=value`` overrides.

    ``defaults`` (e.g. values from CLI flags) sit below the file; overrides sit above it.
    """
    data: dict[str, Any] = dict(defaults or {})
    source = "<defaults>"
    base_dir: Path = Path.cwd()
    if path is not None:
        path = Path(path)
        data = deep_merge(data, read_yaml(path))
        source = str(path)
        base_dir = path.resolve().parent
    try:
        cfg = model.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
    override_dict = parse_overrides(overrides)
    if not override_dict:
        return cfg
    merged = deep_merge(cfg.model_dump(mode="python"), override_dict)
    try:
        return model.model_validate(merged, context={"base_dir": Path.cwd()})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "--set overrides")) from None


def config_to_yaml(cfg: BaseModel) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def save_resolved(cfg: BaseModel, out_dir: str | Path, name: str = RESOLVED_CONFIG_NAME) -> Path:
    """Write the resolved config (all defaults filled, paths absolute) next to the outputs."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / name
    header = f"# resolved {type(cfg).__name__} written {_dt.datetime.now(_dt.UTC).isoformat()}\n"
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(header + config_to_yaml(cfg), encoding="utf-8")
    tmp.replace(target)
    return target
