"""Loaders of the public text-to-image ReID benchmarks (DESIGN.md §5).

``load_benchmark(name, annotations, images)`` reads CUHK-PEDES (``reid_raw.json``), ICFG-PEDES
(``ICFG-PEDES.json``), RSTPReid (``data_captions.json``), UFine6926 and UFine3C into a
:class:`Benchmark`: ``records(split)`` (one :class:`ImageRecord` per image, original ids) and
``pairs(split)`` (one :class:`PedesSample` per caption; train ids remapped to ``0..N-1``).
One module per format states its layout; ``base`` holds the strict parsing they share.
"""

from training.data.benchmarks.base import MAX_REPORTED, Benchmark, FormatSpec
from training.data.benchmarks.records import SPLITS, ImageRecord, PedesSample
from training.data.benchmarks.registry import (
    ALIASES,
    FORMATS,
    benchmark_names,
    canonical_name,
    load_benchmark,
)

__all__ = [
    "ALIASES",
    "FORMATS",
    "MAX_REPORTED",
    "SPLITS",
    "Benchmark",
    "FormatSpec",
    "ImageRecord",
    "PedesSample",
    "benchmark_names",
    "canonical_name",
    "load_benchmark",
]
