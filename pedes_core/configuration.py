"""Typed configuration: pydantic models loaded from YAML, with ``key.sub=value`` CLI overrides.

Rules (documented in the README's config reference):

* every config model derives from :class:`ConfigModel`, which forbids unknown keys;
* a relative path written in a YAML file is resolved against that file's directory, a relative
  path given as a CLI override against the current directory (so a recipe runs from anywhere);
  output paths (:data:`OutputPath`) always resolve against the current directory;
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


def _resolve_output(value: Any) -> Any:
    if value is None or isinstance(value, str) and "://" in value:
        return value
    p = Path(value).expanduser()
    return p if p.is_absolute() else p.absolute()


#: A filesystem path; relative values resolve against the YAML file's directory.
ConfigPath = Annotated[Path, BeforeValidator(_resolve_relative)]
#: Where outputs go; a relative value resolves against the current directory, also in a YAML file, so a
#: recipe in the checkout (or the installed package) never writes next to itself (docs/outputs.md).
OutputPath = Annotated[Path, BeforeValidator(_resolve_output)]
#: Like :data:`ConfigPath`, and the path must exist when the config is loaded.
ExistingPath = Annotated[Path, BeforeValidator(_resolve_relative), AfterValidator(_must_exist)]


class IndexedItems(dict):
    """Overrides of list items by position: ``models.0.dtype=float32`` parses to
    ``{"models": IndexedItems({0: {"dtype": "float32"}})}``; :func:`deep_merge` applies it to item 0 of
    the base list (index ``len(list)`` appends, a larger one is an error)."""


def parse_overrides(overrides: Iterable[str]) -> dict[str, Any]:
    """Turn ``["train.lr=1e-4", "kinds=[static,dynamic]", "models.0.max_model_len=1024"]`` into a nested dict.

    Values are parsed as YAML scalars/flow collections, so numbers, booleans, lists and ``null``
    work as in the file. A key segment made of digits addresses a list item (:class:`IndexedItems`).
    """
    nested: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE (for example train.epochs=3)")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key or any(not part.strip() for part in key.split(".")):
            raise ConfigError(f"--set {item!r}: empty key segment")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: value is not valid YAML ({exc})") from None
        parts: list[str | int] = [int(p) if p.strip().isdigit() else p.strip() for p in key.split(".")]
        if isinstance(parts[0], int):
            raise ConfigError(f"--set {item!r}: a key cannot start with a list index")
        cursor: dict[Any, Any] = nested
        for part, nxt in zip(parts[:-1], parts[1:], strict=True):
            want: type[dict] = IndexedItems if isinstance(nxt, int) else dict
            child = cursor.get(part)
            if child is None:
                child = cursor[part] = want()
            elif not isinstance(child, dict) or isinstance(child, IndexedItems) != (want is IndexedItems):
                raise ConfigError(f"--set {item!r}: {part!r} conflicts with an earlier --set of the same key")
            cursor = child
        cursor[parts[-1]] = value
    return nested


def _merge_items(base: Any, items: IndexedItems, name: str) -> list[Any]:
    if base is None:
        base = []
    if not isinstance(base, list | tuple):
        raise ConfigError(f"--set {name}.{min(items)}: {name!r} is not a list (got {type(base).__name__})")
    out = list(base)
    for idx in sorted(items):
        val = items[idx]
        if idx < len(out):
            if isinstance(val, IndexedItems):
                out[idx] = _merge_items(out[idx], val, f"{name}.{idx}")
            elif isinstance(val, Mapping) and isinstance(out[idx], Mapping):
                out[idx] = deep_merge(out[idx], val)
            else:
                out[idx] = val
        elif idx == len(out):
            out.append(_merge_items(None, val, f"{name}.{idx}") if isinstance(val, IndexedItems) else
                       deep_merge({}, val) if isinstance(val, Mapping) else val)
        else:
            raise ConfigError(f"--set {name}.{idx}: index out of range ({name!r} has {len(out)} item(s))")
    return out


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: mappings merge, :class:`IndexedItems` update list items, everything else in
    ``update`` replaces."""
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, IndexedItems):
            out[k] = _merge_items(out.get(k), v, str(k))
        elif isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = deep_merge({}, v) if isinstance(v, Mapping) else v
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
    flags: Mapping[str, Any] | None = None,
) -> T:
    """Load ``model`` from an optional YAML file, then apply ``key=value`` overrides.

    Layers, lowest first: ``defaults`` (values a caller supplies when neither the file nor the command
    line says anything), the file, ``flags`` (explicit command-line options, which win over the file;
    ``None`` values are "not given"), then ``overrides`` (``--set``). One path rule: a relative path
    written in the file resolves against the file's directory; a flag's must already be absolute or
    relative to the current directory (the CLI passes ``Path.absolute()``), an override's resolves
    against the current directory.
    """
    data: dict[str, Any] = dict(defaults or {})
    source = "<defaults>"
    base_dir: Path = Path.cwd()
    if path is not None:
        path = Path(path)
        data = deep_merge(data, read_yaml(path))
        source = str(path)
        base_dir = path.resolve().parent
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    if given:
        data = deep_merge(data, given)
        source = f"{source} + command-line flags" if path is not None else "command-line flags"
    try:
        cfg = model.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
    return apply_overrides(cfg, overrides)


def apply_overrides(cfg: T, overrides: Iterable[str], source: str = "--set overrides") -> T:
    """``cfg`` with ``key=value`` items applied and validated again (relative paths against the current
    directory); a bad key or value is a :class:`ConfigError` that names ``source``."""
    override_dict = parse_overrides(overrides)
    if not override_dict:
        return cfg
    merged = deep_merge(cfg.model_dump(mode="python"), override_dict)
    try:
        return type(cfg).model_validate(merged, context={"base_dir": Path.cwd()})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


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
