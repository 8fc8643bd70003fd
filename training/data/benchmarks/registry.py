"""Benchmark name → format, and :func:`load_benchmark`, the one entry point (DESIGN.md §5).

Names: ``cuhk-pedes``, ``icfg-pedes``, ``rstpreid``, ``ufine6926``, ``ufine3c``; case and ``_``/``-``
do not matter (``CUHK_PEDES`` works). Alias ``ufine`` (used by ``pedes corpus import --format ufine``)
picks UFine3C when the file's first entry has a ``source`` key (the UFine3C layout) and UFine6926
otherwise; the chosen loader is then strict about its own layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pedes_core.errors import ConfigError
from training.data.benchmarks import cuhk_pedes, icfg_pedes, rstpreid, ufine3c, ufine6926
from training.data.benchmarks.base import Benchmark, FormatSpec, build_benchmark, read_annotation_list

FORMATS: dict[str, FormatSpec] = {
    m.SPEC.name: m.SPEC for m in (cuhk_pedes, icfg_pedes, rstpreid, ufine6926, ufine3c)
}
#: Names that resolve to a format only once the file has been read.
ALIASES: tuple[str, ...] = ("ufine",)


def benchmark_names(*, aliases: bool = False) -> list[str]:
    """The registered benchmark names (plus the aliases when asked)."""
    return list(FORMATS) + (list(ALIASES) if aliases else [])


def canonical_name(name: str) -> str:
    """Normalize a user-given name; :class:`ConfigError` listing the known names when unknown."""
    key = name.strip().lower().replace("_", "-")
    if key in FORMATS or key in ALIASES:
        return key
    raise ConfigError(f"unknown benchmark {name!r}; expected one of {', '.join(benchmark_names(aliases=True))}")


def _detect_ufine(data: list[Any]) -> FormatSpec:
    first = data[0]
    if isinstance(first, dict) and ufine3c.SPEC.source_key in first:
        return ufine3c.SPEC
    return ufine6926.SPEC


def load_benchmark(
    name: str,
    annotations: str | Path,
    images: str | Path,
    *,
    val_fraction: float = 0.0,
    check_images: bool = True,
) -> Benchmark:
    """Load a benchmark in its public format.

    ``annotations`` is the JSON file, ``images`` the folder its paths are relative to.
    ``val_fraction`` (files without a ``val`` split only) holds out that share of the training
    identities as ``val``. Malformed annotations or missing images raise
    :class:`~pedes_core.errors.InputError` naming the file and the first offending entries.
    """
    key = canonical_name(name)
    spec = FORMATS.get(key)
    data = read_annotation_list(annotations, spec.title if spec else "UFineBench")
    if spec is None:
        spec = _detect_ufine(data)
    return build_benchmark(spec, data, annotations, images, val_fraction=val_fraction, check_images=check_images)
