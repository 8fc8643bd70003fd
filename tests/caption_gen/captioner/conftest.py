"""Session fixtures of the captioner tests: one tiny trained captioner per architecture and session (cached across
sessions by its config + data hash in ``$PEDES_CACHE``/``~/.cache/pedes-forge``), held-out synthetic
images, and one real vLLM CPU engine per module (built under the fixture, never at import time:
vLLM spawns its workers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.captioner_settings import (  # shared with the demo test (one cached model)
    TEST_CAPTIONER,
    TEST_CAPTIONER_LLAVA,
)


@pytest.fixture(scope="session")
def trained_captioner(tmp_path_factory) -> Path:
    from caption_gen.captioner import CaptionerConfig, train_captioner

    return train_captioner(CaptionerConfig(**TEST_CAPTIONER), log=print)


@pytest.fixture(scope="session")
def trained_llava_captioner(tmp_path_factory) -> Path:
    from caption_gen.captioner import CaptionerConfig, train_captioner

    return train_captioner(CaptionerConfig(**TEST_CAPTIONER_LLAVA), log=print)


@pytest.fixture(scope="session")
def heldout_synth(tmp_path_factory) -> Path:
    """6 held-out people × 2 images (reserved seed, never trained on)."""
    from caption_gen.captioner import HELDOUT_SEED_BASE
    from caption_gen.synth import render_dataset

    out = tmp_path_factory.mktemp("captioner-heldout")
    render_dataset(out, identities=6, images_per_identity=2, seed=HELDOUT_SEED_BASE + 1, val_fraction=0.0,
                   test_fraction=0.0)
    return out


@pytest.fixture(scope="module", params=["qwen2vl", "llava"])
def captioner_backend(request):
    """The real vLLM CPU engine on the trained captioner of each architecture, with the backend's CPU
    defaults (no engine settings in the spec); shut down before the next one."""
    pytest.importorskip("vllm")
    from caption_gen.backends.factory import build_backend
    from caption_gen.backends.spec import ModelSpec

    folder = request.getfixturevalue("trained_captioner" if request.param == "qwen2vl" else "trained_llava_captioner")
    spec = ModelSpec(name="captioner", backend="vllm", path=folder, max_model_len=1024)
    backend = build_backend(spec)
    yield spec, backend
    backend.close()
