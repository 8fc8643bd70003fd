"""Session fixtures for the BDAM tests: the CLIP tokenizer, a tiny model config, synthetic pedestrians."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from training.models.config import ModelConfig
from training.tokenization import ClipTokenizer

COLORS = {"red": (0.9, 0.1, 0.1), "green": (0.1, 0.8, 0.1), "blue": (0.1, 0.2, 0.9), "yellow": (0.9, 0.9, 0.1),
          "purple": (0.6, 0.1, 0.7), "white": (0.95, 0.95, 0.95)}
HAIR = {"black": (0.05, 0.05, 0.05), "blond": (0.95, 0.85, 0.4), "brown": (0.45, 0.25, 0.1),
        "gray": (0.6, 0.6, 0.6), "ginger": (0.85, 0.4, 0.1), "bald": (0.9, 0.7, 0.6)}
BUILDS = {"slim": (12, 20), "broad": (8, 24)}
SIZE = 32


@dataclass
class Pedestrians:
    images: torch.Tensor  # [N, 3, 32, 32]
    captions: list[str]
    identity: list[str]
    clothing: list[str]
    pids: torch.Tensor
    outfit: torch.Tensor  # outfit index within the identity (-1: distractor)


def render(hair: str, build: str, top: str, pants: str, rng: np.random.Generator) -> torch.Tensor:
    """A 32×32 pedestrian: hair block, torso (top colour) and legs (pants colour) of the build's width."""
    img = np.full((3, SIZE, SIZE), 0.5) + rng.normal(0, 0.05, (3, SIZE, SIZE))
    lo, hi = BUILDS[build]
    dx = int(rng.integers(-2, 3))
    img[:, 1:8, 12 + dx:20 + dx] = np.array(HAIR[hair])[:, None, None]
    img[:, 8:20, lo + dx:hi + dx] = np.array(COLORS[top])[:, None, None]
    img[:, 20:31, lo + 2 + dx:hi - 2 + dx] = np.array(COLORS[pants])[:, None, None]
    img += rng.normal(0, 0.05, img.shape)
    return torch.tensor((img - 0.5) / 0.25, dtype=torch.float32)


def describe(hair: str, build: str, top: str, pants: str) -> tuple[str, str, str]:
    ident = f"a {build} person with {hair} hair"
    clo = f"a {top} shirt and {pants} pants"
    return f"{ident} wearing {clo}", ident, clo


def make_pedestrians(n_ids: int = 12, outfits: int = 3, seed: int = 0) -> tuple[list[tuple[str, str]], list[list[tuple[str, str]]]]:
    """Identities (hair, build) and ``outfits`` distinct (top, pants) outfits each."""
    rng = np.random.default_rng(seed)
    people = [(h, b) for h in HAIR for b in BUILDS][:n_ids]
    names = list(COLORS)
    wardrobe = []
    for _ in people:
        pairs = set()
        while len(pairs) < outfits:
            pairs.add((names[rng.integers(len(names))], names[rng.integers(len(names))]))
        wardrobe.append(sorted(pairs))
    return people, wardrobe


def build_set(items: list[tuple[int, int, tuple[str, str], tuple[str, str]]], per: int, seed: int) -> Pedestrians:
    rng = np.random.default_rng(seed)
    imgs, caps, ids, clos, pids, outfits = [], [], [], [], [], []
    for pid, outfit, (hair, build), (top, pants) in items:
        for _ in range(per):
            imgs.append(render(hair, build, top, pants, rng))
            c, i, o = describe(hair, build, top, pants)
            caps.append(c)
            ids.append(i)
            clos.append(o)
            pids.append(pid)
            outfits.append(outfit)
    return Pedestrians(torch.stack(imgs), caps, ids, clos, torch.tensor(pids), torch.tensor(outfits))


@pytest.fixture(scope="session")
def clip_tokenizer() -> ClipTokenizer:
    return ClipTokenizer(context_length=24)


@pytest.fixture(scope="session")
def tiny_model_config() -> ModelConfig:
    return ModelConfig(arch="tiny", image_size=(32, 32), context_length=24,
                       vision={"patch_size": 8, "width": 32, "layers": 1, "head_width": 16},
                       text={"width": 32, "layers": 1, "heads": 2}, embed_dim=32)


@pytest.fixture(scope="session")
def clothes_change_data() -> dict[str, Pedestrians]:
    """Train: outfits 0 and 1 of every identity. Test queries: outfit-0 captions; gallery: outfit-2 images of
    every identity (the targets) + for every identity another identity wearing its outfit 0 (distractors).
    ``seen_query``/``seen_gallery``: fresh renders (new noise and offsets) for the image→image mechanism test —
    queries in outfit 0, gallery = every identity in its other *trained* outfit 1 + the same distractors."""
    people, wardrobe = make_pedestrians()
    train = [(p, o, people[p], wardrobe[p][o]) for p in range(len(people)) for o in (0, 1)]
    queries = [(p, 0, people[p], wardrobe[p][0]) for p in range(len(people))]
    gallery = [(p, 2, people[p], wardrobe[p][2]) for p in range(len(people))]
    n = len(people)
    gallery += [((p + 1 + k) % n, -1, people[(p + 1 + k) % n], wardrobe[p][0]) for p in range(n) for k in range(2)]
    seen_gallery = [(p, 1, people[p], wardrobe[p][1]) for p in range(n)]
    seen_gallery += [((p + 1 + k) % n, -1, people[(p + 1 + k) % n], wardrobe[p][0]) for p in range(n) for k in range(2)]
    return {"train": build_set(train, 4, 1), "query": build_set(queries, 1, 2), "gallery": build_set(gallery, 1, 3),
            "seen_query": build_set(queries, 1, 4), "seen_gallery": build_set(seen_gallery, 1, 5)}
