"""Evaluator: encodes queries/gallery through the method and reproduces eval.metrics on a planted
similarity; re-ranking hooks (pairwise on the gallery cache, list-level on the encoded features; an
option a method cannot honour is a ConfigError); mSD order recorded; reports (seed 002 Table 3/4
shapes + mSD-order note, CMC PNG)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import eval.inference as inference
from eval.evaluator import Evaluator, RetrievalEvaluator, RetrievalSet
from eval.metrics import retrieval_metrics
from eval.reports import direct_transfer_table, finetune_table, plot_cmc, single_result_markdown, write_json
from pedes_core.errors import ConfigError
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
        self.planted_rerank = rerank
        self.supports_rerank = rerank is not None  # declared only when it has a stage-2 scorer
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def encode_text(self, tokens):
        idx = [self.word_ids.index(int(t)) for t in tokens[:, 1]]
        return self.text_vectors[idx] * 3.0  # not normalized: the evaluator must normalize

    def image_index(self, images):
        return (images[:, 0].mean(dim=(1, 2))[:, None] - self.levels[None]).abs().argmin(dim=1)

    def encode_image(self, images):
        return self.image_vectors[self.image_index(images)]

    def rerank_scores(self, query_tokens, gallery_images):
        if self.planted_rerank is None:
            return None
        q = torch.tensor([self.word_ids.index(int(t)) for t in query_tokens[:, 1]])
        return self.planted_rerank[q, self.image_index(gallery_images)]


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


def test_progress_counts_every_encoded_text_and_image(retrieval_set):
    rng = np.random.default_rng(0)
    ev = _evaluator(PlantedMethod(ClipTokenizer(), rng.normal(size=(6, 5)), rng.normal(size=(4, 5))))
    calls: list[int] = []
    ev.progress = calls.append
    ev.run(retrieval_set)
    # batch size 4: texts 4 + 2, images 4
    assert calls == [4, 2, 4] and sum(calls) == len(retrieval_set.query_texts) + len(retrieval_set.gallery_paths)


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
    summary = result.summary()
    assert summary["rerank_top_k"] == 4 and summary["msd_order"] == "ranked"
    assert json.dumps(summary)  # JSON-ready (no CMC lists, plain floats)


def test_pairwise_rerank_reads_the_gallery_cache_not_the_disk(retrieval_set, monkeypatch):
    """Stage 2 re-scores Q x K pairs from the stage-1 pass's cache: each image is decoded once in all."""
    decodes = []
    original = inference.ImageListDataset.__getitem__

    def counting(self, i):
        decodes.append(i)
        return original(self, i)

    monkeypatch.setattr(inference.ImageListDataset, "__getitem__", counting)
    iv = np.eye(4)
    tv = np.roll(iv[[0, 0, 1, 1, 2, 3]], 1, axis=1)
    rerank = torch.tensor(np.eye(4)[[0, 0, 1, 1, 2, 3]], dtype=torch.float32)
    result = _evaluator(PlantedMethod(ClipTokenizer(), tv, iv, rerank=rerank), rerank_top_k=3).run(retrieval_set)
    assert result.t2i_rerank["R1"] > result.t2i["R1"]
    assert sorted(decodes) == [0, 1, 2, 3]  # 6 queries x 3 pairs re-scored, 4 decodes (before: 4 + 18)


def test_pairwise_rerank_gets_the_declared_gallery_state(retrieval_set):
    """A method may cache an encoded gallery state instead of the decoded images (``rerank_gallery_state``)."""

    class Stateful(PlantedMethod):
        def rerank_gallery_state(self, images):
            return self.image_index(images)[:, None].float()  # [B, 1]: what stage 2 needs of an image

        def rerank_scores(self, query_tokens, gallery_state):
            assert gallery_state.shape[1:] == (1,)
            q = torch.tensor([self.word_ids.index(int(t)) for t in query_tokens[:, 1]])
            return self.planted_rerank[q, gallery_state[:, 0].long()]

    iv = np.eye(4)
    tv = np.roll(iv[[0, 0, 1, 1, 2, 3]], 1, axis=1)
    rerank = torch.tensor(np.eye(4)[[0, 0, 1, 1, 2, 3]], dtype=torch.float32)
    result = _evaluator(Stateful(ClipTokenizer(), tv, iv, rerank=rerank), rerank_top_k=4).run(retrieval_set)
    assert result.t2i["R1"] == 0.0 and result.t2i_rerank["R1"] == 100.0


def test_rerank_on_a_method_without_reranker_is_a_config_error(retrieval_set):
    method = PlantedMethod(ClipTokenizer(), np.eye(4)[[0, 0, 1, 1, 2, 3]], np.eye(4))  # no stage-2 scorer
    with pytest.raises(ConfigError, match="rerank_top_k"):
        _evaluator(method, rerank_top_k=5)
    assert _evaluator(method, rerank_top_k=0).run(retrieval_set).t2i_rerank is None


def test_rerank_on_a_registered_method_without_reranker_is_a_config_error():
    from training.config import RecipeConfig
    from training.engine.smoke import smoke_model_config
    from training.engine.trainer import build_method

    recipe = RecipeConfig.model_validate(
        {"model": smoke_model_config((32, 16)).model_dump(), "method": {"name": "sdm"}, "data": {"corpus": {"root": "."}},
         "eval": {"rerank_top_k": 5}}
    )
    method = build_method(recipe, num_classes=4, num_captions=4)
    with pytest.raises(ConfigError, match="'sdm'.*no re-ranker"):
        Evaluator(method, tokenizer=method.tokenizer, transform=build_test_transform((16, 8)),
                  rerank_top_k=recipe.eval.rerank_top_k)


def test_list_level_rerank_gets_the_encoded_features(retrieval_set):
    class ListLevel(PlantedMethod):
        def rerank(self, context):
            self.seen = context
            return -context.similarity  # reverse the stage-1 order

    iv = np.eye(4)
    method = ListLevel(ClipTokenizer(), iv[[0, 0, 1, 1, 2, 3]], iv, rerank=torch.zeros(6, 4))
    result = _evaluator(method, rerank_top_k=2).run(retrieval_set)
    ctx = method.seen
    assert ctx.gallery_state is None and ctx.top_k == 2  # list-level: no gallery cache kept
    assert torch.allclose(ctx.similarity, ctx.query_features @ ctx.gallery_features.T)
    assert torch.allclose(ctx.gallery_features.norm(dim=1), torch.ones(4))
    assert result.t2i["R1"] == 100.0 and result.t2i_rerank["R1"] == 0.0


def test_msd_order_is_applied_and_recorded(retrieval_set):
    rng = np.random.default_rng(3)
    tv, iv = rng.normal(size=(6, 5)), rng.normal(size=(4, 5))
    ranked = _evaluator(PlantedMethod(ClipTokenizer(), tv, iv)).run(retrieval_set)
    gallery = _evaluator(PlantedMethod(ClipTokenizer(), tv, iv), msd_order="gallery").run(retrieval_set)
    sim = torch.tensor((tv / np.linalg.norm(tv, axis=1, keepdims=True)) @ (iv / np.linalg.norm(iv, axis=1, keepdims=True)).T,
                       dtype=torch.float32)
    expected = retrieval_metrics(sim, retrieval_set.query_ids, retrieval_set.gallery_ids, msd_order="gallery")
    assert gallery.t2i["mSD"] == pytest.approx(expected["mSD"], abs=1e-4)
    assert gallery.t2i["mSD"] != pytest.approx(ranked.t2i["mSD"], abs=1e-3)
    assert gallery.t2i["R1"] == ranked.t2i["R1"]  # only mSD depends on the order
    assert ranked.summary()["msd_order"] == "ranked" and gallery.summary()["msd_order"] == "gallery"
    assert "mSD order: gallery order" in single_result_markdown(gallery.summary())
    with pytest.raises(ConfigError, match="msd_order"):
        RetrievalEvaluator(msd_order="sorted")


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
    assert t3.endswith("\n") and "mSD order" not in t3  # no order given: no note
    noted = direct_transfer_table({"Ours": {"CUHK-PEDES": m}}, targets, "ranked")
    assert noted.strip().splitlines()[-1] == "mSD order: ranked-list order (seed 004 §3.4 formula)"
    assert "mSD order: gallery order" in finetune_table({"Ours": {"CUHK-PEDES": {"CUHK-PEDES": m}}}, targets, ["gallery"])
    md = single_result_markdown({"name": "n", "msd_order": "ranked", "rerank_top_k": 5,
                                 "t2i": {"R1": 50.0}, "t2i_rerank": {"R1": 60.0, "mSD": float("nan")}})
    assert "| t2i_rerank (stage 2, K=5) | 60.00 |" in md and "| – |" in md and "mSD order: ranked" in md
