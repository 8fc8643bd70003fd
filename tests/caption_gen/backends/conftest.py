"""Session fixtures for the backend tests: a tiny random LLaVA (own tokenizer, trained here),
synthetic pedestrian images, and one real vLLM CPU engine per test module (shut down after it)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_llava(tmp_path_factory) -> Path:
    from caption_gen.backends.tiny_vlm import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-llava"), arch="llava", seed=0)


@pytest.fixture(scope="session")
def synth_images(tmp_path_factory) -> Path:
    """3 identities × 3 images from the project's synthetic renderer; returns the image folder."""
    from caption_gen.synth import render_dataset

    out = tmp_path_factory.mktemp("backend-synth")
    render_dataset(out, identities=3, images_per_identity=3, seed=5)
    return out / "imgs"


@pytest.fixture(scope="session")
def pil_images(synth_images):
    from PIL import Image

    return [Image.open(p).convert("RGB") for p in sorted(synth_images.rglob("*.jpg"))]


@pytest.fixture(scope="session")
def vllm_spec(tiny_llava):
    from caption_gen.backends.spec import ModelSpec

    return ModelSpec(name="tiny-llava-vllm", backend="vllm", path=tiny_llava, dtype="float32",
                     gpu_memory_utilization=0.1, enforce_eager=True, max_model_len=1024, max_pixels=128 * 64)


@pytest.fixture(scope="module")
def vllm_backend(vllm_spec):
    """One engine for the module's tests (start-up ~20-80 s on a shared 2-core machine), shut down after
    them: an idle vLLM CPU worker process still takes CPU time that the rest of the suite needs."""
    pytest.importorskip("vllm")
    from caption_gen.backends.factory import build_backend

    backend = build_backend(vllm_spec)
    yield backend
    backend.close()
