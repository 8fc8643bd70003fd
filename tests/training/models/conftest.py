from __future__ import annotations

import pytest

from training.models.clip_backbone import ClipBackbone
from training.models.config import ModelConfig
from training.tokenization import ClipTokenizer


@pytest.fixture(scope="session")
def clip_tokenizer() -> ClipTokenizer:
    return ClipTokenizer()


@pytest.fixture(scope="session")
def tiny_reid_config() -> ModelConfig:
    """Tiny towers at the paper's 384x128 geometry with stride 16."""
    return ModelConfig(arch="tiny", image_size=(384, 128), stride=16, nam_layer=10)


@pytest.fixture(scope="session")
def tiny_reid_backbone(tiny_reid_config: ModelConfig, clip_tokenizer: ClipTokenizer) -> ClipBackbone:
    return ClipBackbone(tiny_reid_config, clip_tokenizer.vocab_size).eval()
