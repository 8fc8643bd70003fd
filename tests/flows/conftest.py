"""Session fixtures for the flow tests: one Prefect test harness (temporary SQLite API, ~15 s to start)
and small synthetic pedestrian data, built once."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def prefect_harness():
    """Run the flows under ``prefect_test_harness`` (a throwaway local API + database)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory) -> Path:
    """12 identities × 3 images of synthetic pedestrians (CUHK-PEDES layout: reid_raw.json + imgs/)."""
    from caption_gen.synth import render_dataset

    out = tmp_path_factory.mktemp("flows-synth")
    render_dataset(out, identities=12, images_per_identity=3, seed=3, size=(96, 48))
    return out
