"""Training data (DESIGN.md §5): benchmark loaders (``training.data.benchmarks``), the benchmark →
corpus import (``training.data.import_corpus``), corpus and benchmark datasets, samplers, transforms
and collate functions. Submodules are imported explicitly; this package import stays light.
"""
