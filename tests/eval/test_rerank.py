"""Re-ranking by visual neighbours (NAFS; seed 003 §4.1): a planted case where it fixes rank 1, and
random cases against a plain set-based reference of S + Jaccard(N(T, K), N(I, K))."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eval.metrics import retrieval_metrics
from eval.rerank import visual_neighbour_rerank


def reference_rerank(similarity: np.ndarray, gallery: np.ndarray, k: int) -> np.ndarray:
    """One query and one image at a time, Python sets (ties do not occur on random data)."""
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    image_sim = g @ g.T
    image_sets = [set(np.argsort(-row, kind="stable")[:k].tolist()) for row in image_sim]
    out = np.empty_like(similarity, dtype=np.float64)
    for q, row in enumerate(similarity):
        text_set = set(np.argsort(-row, kind="stable")[:k].tolist())
        for j in range(len(row)):
            jaccard = len(text_set & image_sets[j]) / len(text_set | image_sets[j])
            out[q, j] = row[j] + jaccard
    return out


def test_visual_neighbours_move_the_true_image_to_rank_one() -> None:
    # Gallery: identity A = images 0, 1, 2 (one cluster), identity B = images 3, 4, 5 (another cluster).
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([0.0, 1.0, 0.0])
    gallery = np.stack([a + [0, 0, 0.1], a + [0, 0, 0.2], a + [0, 0, -0.1], b + [0, 0, 0.1], b, b - [0, 0, 0.1]])
    # Query of A: stage 1 ranks B's image 3 first (0.9), then A's 0 and 1; A's 2 and B's 4, 5 low.
    sim = torch.tensor([[0.85, 0.80, 0.20, 0.90, 0.10, 0.00]])
    ids_q, ids_g = [0], [0, 0, 0, 1, 1, 1]
    stage2 = visual_neighbour_rerank(sim, torch.tensor(gallery, dtype=torch.float32), k=3)
    # N(T) = {3, 0, 1}; N(image 0) = {0, 1, 2} → J = 2/4; N(image 3) = {3, 4, 5} → J = 1/5.
    assert stage2[0, 0] == pytest.approx(0.85 + 0.5)
    assert stage2[0, 3] == pytest.approx(0.90 + 0.2)
    assert stage2[0, 4] == pytest.approx(0.10 + 0.2)  # outside the query's top-K, still refined
    before = retrieval_metrics(sim, ids_q, ids_g)
    after = retrieval_metrics(stage2, ids_q, ids_g, compute_msd=False)
    assert before["R1"] == 0.0 and after["R1"] == 100.0
    assert after["mAP"] > before["mAP"]


@pytest.mark.parametrize("k", [1, 3, 7])
def test_matches_the_set_reference_on_random_cases(k: int) -> None:
    rng = np.random.default_rng(k)
    queries, gallery_size = 23, 17
    q = rng.normal(size=(queries, 8))
    g = rng.normal(size=(gallery_size, 8))
    sim = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (g / np.linalg.norm(g, axis=1, keepdims=True)).T
    got = visual_neighbour_rerank(torch.tensor(sim, dtype=torch.float32), torch.tensor(g, dtype=torch.float32),
                                  k, chunk=5)  # chunking over queries and gallery rows
    expected = reference_rerank(sim.astype(np.float32).astype(np.float64), g, k)
    assert np.allclose(got.numpy(), expected, atol=1e-5)
    # the second stage changes the ranking (K = 1 only boosts each query's own top-1: no change)
    assert k == 1 or (got.argsort(dim=1, descending=True) != torch.tensor(sim).argsort(dim=1, descending=True)).any()


def test_k_capped_and_validated() -> None:
    sim = torch.rand(2, 3)
    feats = torch.randn(3, 4)
    full = visual_neighbour_rerank(sim, feats, k=10)  # K capped at G: every set is the whole gallery
    assert torch.allclose(full, sim + 1.0)
    with pytest.raises(ValueError):
        visual_neighbour_rerank(sim, feats, k=0)
    with pytest.raises(ValueError):
        visual_neighbour_rerank(sim, torch.randn(4, 4), k=2)
