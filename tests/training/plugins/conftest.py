"""Fixtures for the seed-method plug-in tests: tiny CLIP config, tokenizer, synthetic pedestrians.

``caption_gen.synth`` (the project's procedural renderer) does not exist yet, so :func:`synthetic_people`
renders the same kind of data here: an identity is an (upper colour, lower colour, bag) triple; its image
is a 64×32 figure with those colours plus per-sample noise/brightness jitter, its caption names them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from training.models.config import ModelConfig
from training.tokenization import ClipTokenizer

COLOURS = {
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.8, 0.2),
    "blue": (0.1, 0.2, 0.9),
    "yellow": (0.9, 0.9, 0.1),
    "white": (0.95, 0.95, 0.95),
    "black": (0.05, 0.05, 0.05),
}
CONTEXT = 24
IMAGE_SIZE = (64, 32)


@dataclass
class SyntheticPeople:
    images: torch.Tensor
    tokens: torch.Tensor
    person_ids: torch.Tensor

    def batch(self, index: torch.Tensor) -> dict[str, Any]:
        return {
            "images": self.images[index],
            "text_tokens": self.tokens[index],
            "person_ids": self.person_ids[index],
            "caption_ids": index.clone(),
            "image_index": index.clone(),
        }


def synthetic_people(
    tokenizer: ClipTokenizer, num_ids: int, per_id: int, seed: int, first_id: int = 0
) -> SyntheticPeople:
    generator = torch.Generator().manual_seed(seed)
    names = list(COLOURS)
    combos = [(u, lo) for u, lo in itertools.product(names, names) if u != lo]
    images, captions, ids = [], [], []
    for pid in range(first_id, first_id + num_ids):
        upper, lower = combos[pid % len(combos)]
        for _ in range(per_id):
            h, w = IMAGE_SIZE
            image = torch.full((3, h, w), 0.5)
            image[:, 8 : h // 2, 6 : w - 6] = torch.tensor(COLOURS[upper])[:, None, None]
            image[:, h // 2 : h - 4, 8 : w - 8] = torch.tensor(COLOURS[lower])[:, None, None]
            image = image * (0.8 + 0.4 * torch.rand(1, generator=generator))
            image = image + 0.1 * torch.randn(image.shape, generator=generator)
            images.append((image - 0.5) / 0.25)
            verb = ["wearing", "in", "dressed in"][int(torch.randint(3, (1,), generator=generator))]
            captions.append(f"a person {verb} a {upper} shirt and {lower} trousers")
            ids.append(pid)
    return SyntheticPeople(torch.stack(images), tokenizer(captions), torch.tensor(ids))


@pytest.fixture(scope="session")
def plugin_tokenizer() -> ClipTokenizer:
    return ClipTokenizer(context_length=CONTEXT)


@pytest.fixture(scope="session")
def plugin_model_config() -> ModelConfig:
    return ModelConfig(
        arch="tiny",
        image_size=IMAGE_SIZE,
        stride=16,
        context_length=CONTEXT,  # model_configs/tiny.json: 2+2 blocks of width 64
        nam_layer=1,
    )


@pytest.fixture(scope="session")
def plugin_batch(plugin_tokenizer: ClipTokenizer) -> dict[str, Any]:
    people = synthetic_people(plugin_tokenizer, num_ids=3, per_id=2, seed=0)
    return people.batch(torch.arange(6))
