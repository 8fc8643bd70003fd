from __future__ import annotations

import pytest
import torch

from training.models.config import ModelConfig
from training.tokenization import ClipTokenizer

CAPTIONS = [
    "a man in a red jacket and black trousers",
    "a woman with long hair carrying a white bag",
    "a person wearing blue jeans and grey sneakers",
    "a young man in a green shirt with a backpack",
]


@pytest.fixture(scope="session")
def method_tokenizer() -> ClipTokenizer:
    return ClipTokenizer()


@pytest.fixture(scope="session")
def method_model_config() -> ModelConfig:
    return ModelConfig(
        arch="tiny", image_size=(64, 32), stride=16, vision={"layers": 3}, text={"layers": 3}, nam_layer=2
    )


@pytest.fixture(scope="session")
def method_batch(method_tokenizer: ClipTokenizer) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "images": torch.randn(4, 3, 64, 32, generator=generator),
        "text_tokens": method_tokenizer(CAPTIONS),
        "person_ids": torch.tensor([0, 1, 2, 2]),
        "caption_ids": torch.tensor([0, 1, 2, 3]),
        "image_index": torch.tensor([0, 1, 2, 3]),
    }
