"""Session fixtures for the captioning-engine tests: synthetic pedestrian images (real JPEGs)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def engine_images(tmp_path_factory) -> Path:
    """4 identities × 3 images rendered by the project's synthetic renderer; returns the image folder."""
    from caption_gen.synth import render_dataset

    out = tmp_path_factory.mktemp("engine-synth")
    render_dataset(out, identities=4, images_per_identity=3, seed=11, size=(128, 64))
    return out / "imgs"
