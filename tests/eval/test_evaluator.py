"""Evaluator: encodes queries/gallery through the method and reproduces eval.metrics on a planted
similarity; re-ranking hook; reports (seed 002 Table 3/4 shapes, CMC PNG)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from eval.evaluator import Evaluator, RetrievalSet
from eval.metrics import retrieval_metrics
from eval.reports import direct_transfer_table, finetune_table, plot_cmc, single_result_markdown, write_json
from training.data.transforms import build_test_transform
from training.methods.base import TrainingMethod
from training.tokenization import ClipTokenizer

WORDS = ["red", "blue", "green", "black", "white", "yellow"]
GRAYS = [20, 80, 140, 200]


class PlantedMethod(TrainingMethod):
    """Text feature = planted vector of the caption's first word; image feature = planted vector of the
    gallery image, recognised by its grey level."""

    def __init__(self, tokenizer, text_vectors, image_vectors, rerank=None):
        super().__init__()
        self.word_ids = [int(tokenizer([w])[0, 1]) for w in WORDS]
        self.text_vectors = torch.as_tensor(text_vectors, dtype=torch.float32)
        self.image_vectors = torch.as_tensor(image_vectors, dtype=torch.float32)
        t = build_test_transform((16, 8))
        self.levels = torch.stack([t(Image.new("RGB", (8, 16), (g, g, g)))[0].mean() for g in GRAYS])
        self.rerank = rerank
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def encode_text(self, tokens):
        idx = [self.word_ids.index(int(t)) for t in tokens[:, 1]]
        return self.text_vectors[idx] * 3.0  # not normalized: the evaluator must normalize

    def image_index(self, images):
        return (images[:, 0].mean(dim=(1, 2))[:, None] - self.levels[None]).abs().argmin(dim=1)

    def encode_image(self, images):
        return self.image_vectors[self.image_index(images)]

    def rerank_scores(self, query_tokens, gallery_images):
        if self.rerank is None:
            return None
        q = torch.tensor([self.word_ids.index(int(t)) for t in query_tokens[:, 1]])
        return self.rerank[q, self.image_index(gallery_images)]


@pytest.fixture(scope="module")
def retrieval_set(tmp_path_factory) -> RetrievalSet:
    root = tmp_path_factory.mktemp("gallery")
    paths = []
    for k, g in enumerate(GRAYS):
        Image.new("RGB", (8, 16), (g, g, g)).save(root / f"g{k}.png")
        paths.append(f"g{k}.png")
    query_ids = np.array([0, 0, 1, 1, 2, 3])
    gallery_ids = np.array([0, 1, 2, 3])
    return RetrievalSet("planted", [f"{w} person" for w in WORDS], query_ids, paths, gallery_ids, image_root=str(root))


def _evaluator(method, **kw):
    return Evaluator(method, tokenizer=ClipTokenizer(), transform=build_test_transform((16, 8)), batch_size=4, **kw)


def test_matches_metrics_on_a_planted_similarity(retrieval_set):
    rng = np.random.default_rng(0)
    tv, iv = rng.normal(size=(6, 5)), rng.normal(size=(4, 5))
    result = _evaluator(PlantedMethod(ClipTokenizer(), tv, iv)).run(retrieval_set)
    tn = tv / np.linalg.norm(tv, axis=1, keepdims=True)
    gn = iv / np.linalg.norm(iv, axis=1, keepdims=True)
    sim = torch.tensor(tn @ gn.T, dtype=torch.float32)
    expected_t2i = retrieval_metrics(sim, retrieval_set.query_ids, retrieval_set.gallery_ids)
    expected_i2t = retrieval_metrics(sim.T, retrieval_set.gallery_ids, retrieval_set.query_ids)
    for key in ("R1", "R5", "R10", "mAP", "mINP", "mSD"):
        assert result.t2i[key] == pytest.approx(expected_t2i[key], abs=1e-4)
        assert result.i2t[key] == pytest.approx(expected_i2t[key], abs=1e-4)
    assert result.num_queries == 6 and result.num_gallery == 4 and result.t2i_rerank is None


def test_planted_rank1(retrieval_set):
    iv = np.eye(4)
    tv = iv[[0, 0, 1, 1, 2, 3]].copy()
    tv[1], tv[5] = iv[2], iv[0]  # two queries point at a wrong identity
    result = _evaluator(PlantedMethod(ClipTokenizer(), tv, iv)).run(retrieval_set)
    assert result.t2i["R1"] == pytest.approx(100 * 4 / 6)
    # i2t (ties → smaller index): image 0 → q0 ok; image 1 → q2 ok; image 2 → q1 (wrong, tie with q4);
    # image 3 → no similar caption, q0 (wrong)
    assert result.i2t["R1"] == pytest.approx(50.0)


def test_rerank_hook_reorders_top_k(retrieval_set):
    iv = np.eye(4)
    tv = np.roll(iv[[0, 0, 1, 1, 2, 3]], 1, axis=1)  # stage 1: every query ranks a wrong image first
    rerank = torch.tensor(np.eye(4)[[0, 0, 1, 1, 2, 3]], dtype=torch.float32)  # stage 2 knows the truth
    result = _evaluator(PlantedMethod(ClipTokenizer(), tv, iv, rerank=rerank), rerank_top_k=4).run(retrieval_set)
    assert result.t2i["R1"] == 0.0
    assert result.t2i_rerank is not None and result.t2i_rerank["R1"] == 100.0
    assert json.dumps(result.summary())  # JSON-ready (no CMC lists, plain floats)


def test_reports_have_the_seed_table_shapes(tmp_path):
    m = {"R1": 52.64, "mAP": 46.48}
    targets = ["CUHK-PEDES", "ICFG-PEDES"]
    t3 = direct_transfer_table({"None": {"CUHK-PEDES": m}, "Ours": {"CUHK-PEDES": m, "ICFG-PEDES": m}}, targets)
    lines = t3.strip().splitlines()
    assert lines[0] == "| Init | CUHK-PEDES R1 | CUHK-PEDES mAP | ICFG-PEDES R1 | ICFG-PEDES mAP |"
    assert lines[2] == "| None | 52.64 | 46.48 | – | – |" and len(lines) == 4
    t4 = finetune_table({"Ours": {"CUHK-PEDES": {"CUHK-PEDES": m, "ICFG-PEDES": m}, "ICFG-PEDES": {"CUHK-PEDES": m}}}, targets)
    rows = t4.strip().splitlines()
    assert rows[0].startswith("| Init | Source | CUHK-PEDES R1")
    assert rows[2] == "| Ours | CUHK-PEDES | 52.64 | 46.48 | 52.64 | 46.48 |"
    assert rows[3] == "|  | ICFG-PEDES | 52.64 | 46.48 | – | – |"
    png = plot_cmc({"a": [10.0, 20.0, 30.0]}, tmp_path / "cmc.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    path = write_json({"x": np.float32(1.5)}, tmp_path / "r.json")
    assert json.loads(path.read_text()) == {"x": 1.5}
    assert "| t2i | 52.64 |" in single_result_markdown({"name": "n", "t2i": {"R1": 52.64}})
