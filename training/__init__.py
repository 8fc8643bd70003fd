"""Datasets, models, losses and the training engine for text-to-image person ReID (DESIGN.md §5)."""
