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


def read_artifact(key: str) -> str:
    """The newest Prefect artifact with ``key``, read from the API (Prefect 3.8.8's ``Artifact.get`` sends a
    filter body its own server refuses with 422)."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        resp = client._client.post("/artifacts/filter", json={"artifacts": {"key": {"any_": [key]}},
                                                               "sort": "CREATED_DESC", "limit": 1})
    resp.raise_for_status()
    arts = resp.json()
    assert arts, key
    return str(arts[0]["data"])


@pytest.fixture(scope="session")
def artifact_reader():
    """``read(key) -> str``: the newest markdown/link artifact with that key."""
    return read_artifact


def stub_corpus_config(path: Path, images: Path, out: Path, **caption: object) -> Path:
    """Write a ``build-corpus`` config using the stub backend (no retry back-off, short batch deadline)."""
    import yaml

    cap = {"images": str(images), "out": str(out), "models": [{"name": "stub-a", "backend": "stub"}],
           "kinds": ["static", "identity"], "shard_size": 6, "batch_size": 4, **caption}
    path.write_text(yaml.safe_dump({"caption": cap, "task": {"retries": 1, "retry_delay_s": 0,
                                                             "retry_jitter_factor": None, "batch_timeout_s": 30}}))
    return path


@pytest.fixture(scope="session")
def stub_config_writer():
    return stub_corpus_config
