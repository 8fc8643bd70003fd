"""Tests of ``eval.metrics``: hand-computed tiny cases, the seed 004 §3.4 mSD reading, and agreement
with the slow per-query reference (``reference_metrics.py``) on many random cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_metrics import public_calculator_sd, reference_metrics, reference_query

from eval.metrics import cmc_curve, evaluate_both_directions, retrieval_metrics
from eval.ranking import numba_available
from pedes_core.errors import InputError

BACKENDS = [
    "torch",
    pytest.param("numba", marks=pytest.mark.skipif(not numba_available(), reason="no numba")),
]
METRIC_KEYS = ("R1", "R5", "R10", "mAP", "mINP", "mSD")
TOLERANCE = 1e-6  # percent points
#: mSD sums float32 similarities (the reference sums in float64): a few ulps of a sum of magnitude ~1, times
#: 100 for percent, reach ~1e-6 — found by the hypothesis test (5×3 float32 matrix, mSD off by 1.3e-6).
MSD_TOLERANCE = 1e-5


def assert_matches_reference(result: dict, expected: dict) -> None:
    for key in (*METRIC_KEYS, "num_queries", "num_evaluated", "num_skipped"):
        if isinstance(expected[key], float) and math.isnan(expected[key]):
            assert math.isnan(result[key]), key
        else:
            tol = MSD_TOLERANCE if key == "mSD" else TOLERANCE
            assert result[key] == pytest.approx(expected[key], abs=tol), key
    np.testing.assert_allclose(result["cmc"], expected["cmc"], atol=TOLERANCE)


# ----------------------------------------------------------------------------- hand-computed cases


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_computed_two_queries_and_one_skipped(backend: str) -> None:
    # Query 0 (id 1): gallery already sorted; positives (id 1) at ranks 1 and 3.
    # Query 1 (id 2): the only positive (gallery item 1, 0.3) is ranked 2nd behind 0.4.
    # Query 2 (id 9): no positive in the gallery -> skipped.
    similarity = np.array(
        [[0.9, 0.8, 0.7, 0.6, 0.5], [0.4, 0.3, -0.2, 0.0, 0.2], [0.1, 0.2, 0.3, 0.4, 0.5]], dtype=np.float32
    )
    result = retrieval_metrics(similarity, [1, 2, 9], [1, 2, 1, 3, 4], backend=backend)
    assert result["num_queries"] == 3 and result["num_evaluated"] == 2 and result["num_skipped"] == 1
    assert result["R1"] == pytest.approx(50.0)  # query 0 hit at rank 1, query 1 at rank 2
    assert result["R5"] == pytest.approx(100.0) and result["R10"] == pytest.approx(100.0)
    assert result["cmc"][:3] == pytest.approx([50.0, 100.0, 100.0])
    # AP: query 0 (1/1 + 2/3) / 2 = 5/6, query 1 1/2  ->  mAP = (5/6 + 1/2) / 2 = 2/3
    assert result["mAP"] == pytest.approx(100 * 2 / 3, abs=1e-4)
    # INP: query 0 2 positives / last rank 3 = 2/3, query 1 1/2  ->  mINP = 7/12
    assert result["mINP"] == pytest.approx(100 * 7 / 12, abs=1e-4)
    # SD, query 0: normalized s = 0.95, 0.90, 0.85, 0.80, 0.75 (ranked); positives 0.95 and 0.85.
    asp0 = (0.95 / 0.95 + (0.95 + 0.85) / (0.95 + 0.90 + 0.85)) / 2
    pnr0 = 1 - math.exp(-((0.95 + 0.85) / 2) / ((0.90 + 0.80 + 0.75) / 3))
    # query 1: ranked normalized s = 0.70 (0.4), 0.65 (0.3, positive), 0.60 (0.2), 0.50 (0.0), 0.40 (-0.2)
    asp1 = 0.65 / (0.70 + 0.65)
    pnr1 = 1 - math.exp(-0.65 / ((0.70 + 0.60 + 0.50 + 0.40) / 4))
    assert result["mSD"] == pytest.approx(100 * (pnr0 * asp0 + pnr1 * asp1) / 2, abs=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ties_break_by_gallery_index(backend: str) -> None:
    # All scores equal: ranked list is the gallery order, positives (id 8) at ranks 2 and 4.
    result = retrieval_metrics(np.full((1, 4), 0.5, np.float32), [8], [7, 8, 7, 8], backend=backend)
    assert result["R1"] == 0.0 and result["R5"] == 100.0
    assert result["mAP"] == pytest.approx(100 * (1 / 2 + 2 / 4) / 2)
    assert result["mINP"] == pytest.approx(100 * 2 / 4)
    # Moving the positives to the front of the gallery puts them first.
    result = retrieval_metrics(np.full((1, 4), 0.5, np.float32), [8], [8, 8, 7, 7], backend=backend)
    assert (
        result["R1"] == 100.0
        and result["mAP"] == pytest.approx(100.0)
        and result["mINP"] == pytest.approx(100.0)
    )
    # -0.0 ties with +0.0: the earlier gallery item (the negative) is ranked first.
    result = retrieval_metrics(torch.tensor([[0.0, -0.0]]), [1], [0, 1], backend=backend)
    assert result["R1"] == 0.0 and result["mAP"] == pytest.approx(50.0)
    result = retrieval_metrics(torch.tensor([[-0.0, 0.0]]), [1], [0, 1], backend=backend)
    assert result["R1"] == 0.0 and result["mAP"] == pytest.approx(50.0)
    # Same query, ties with float16 input after conversion: 0.3 and 0.30004 are equal in float16.
    similarity = torch.tensor([[0.3, 0.30004, 0.1]], dtype=torch.float16)
    result = retrieval_metrics(similarity, [1], [0, 1, 1], backend=backend)
    assert result["R1"] == 0.0 and result["mINP"] == pytest.approx(100 * 2 / 3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_gallery_item_and_sd_edge_cases(backend: str) -> None:
    # One gallery item, a positive: every metric 100 (no negatives: PNR = 1, ASP = 1).
    result = retrieval_metrics(np.array([[0.3]], np.float32), [5], [5], backend=backend)
    for key in METRIC_KEYS:
        assert result[key] == pytest.approx(100.0), key
    # Mean negative normalized similarity 0 (cosine -1): x = inf, PNR = 1; ASP = 1.
    result = retrieval_metrics(np.array([[0.5, -1.0]], np.float32), [1], [1, 0], backend=backend)
    assert result["mSD"] == pytest.approx(100.0)
    # Everything at cosine -1: positive ranked 2nd (tie), ASP term 0/0 -> 0, PNR (mean positive 0) = 0.
    result = retrieval_metrics(np.array([[-1.0, -1.0]], np.float32), [1], [0, 1], backend=backend)
    assert result["mSD"] == 0.0 and result["mAP"] == pytest.approx(50.0)


def test_no_query_has_a_positive() -> None:
    result = retrieval_metrics(np.zeros((3, 2), np.float32), [1, 2, 3], [4, 5])
    assert result["num_skipped"] == 3 and result["num_evaluated"] == 0
    assert all(math.isnan(result[key]) for key in METRIC_KEYS)
    empty = retrieval_metrics(np.zeros((2, 0), np.float32), [1, 2], np.zeros(0, np.int64))
    assert empty["num_skipped"] == 2


# ----------------------------------------------------------------------------- mSD reading (seed 004 §3.4)


def test_msd_follows_ranked_list_and_public_calculator_agrees_only_when_presorted() -> None:
    ids = ["p", "n", "p", "n"]
    presorted = [0.9, 0.8, 0.2, 0.1]  # gallery order == rank order: positives at ranks 1 and 3
    reversed_gallery = presorted[::-1]
    reversed_ids = ids[::-1]
    formula = reference_query(presorted, ids, "p")["SD"]
    # Hand-computed: normalized 0.95 (p), 0.90, 0.60 (p), 0.55.
    asp = (1.0 + (0.95 + 0.60) / (0.95 + 0.90 + 0.60)) / 2
    pnr = 1 - math.exp(-((0.95 + 0.60) / 2) / ((0.90 + 0.55) / 2))
    assert formula == pytest.approx(pnr * asp)
    ours = retrieval_metrics(np.array([presorted], np.float32), ["p"], ids)["mSD"]
    ours_reversed = retrieval_metrics(np.array([reversed_gallery], np.float32), ["p"], reversed_ids)["mSD"]
    assert ours == pytest.approx(100 * pnr * asp, abs=1e-4)
    assert ours_reversed == pytest.approx(ours, abs=1e-6)  # the formula ranks first: order-invariant
    # The public calculator: equal on the pre-sorted gallery, different otherwise.
    assert public_calculator_sd(presorted, ids, "p") == pytest.approx(formula)
    # Reversed gallery stored as 0.55 (n), 0.60 (p), 0.90 (n), 0.95 (p); ranked p, n, p, n, so the
    # calculator's rank mask [1, 0, 1, 0] picks the *stored* items 0 and 2 (0.55, 0.90) as "positives".
    calc_asp = (0.55 / 0.55 + (0.55 + 0.90) / (0.55 + 0.60 + 0.90)) / 2
    calc_pnr = 1 - math.exp(-((0.55 + 0.90) / 2) / ((0.60 + 0.95) / 2))
    public = public_calculator_sd(reversed_gallery, reversed_ids, "p")
    assert public == pytest.approx(calc_pnr * calc_asp)
    assert public != pytest.approx(formula, abs=1e-3)
    gallery = retrieval_metrics(np.array([reversed_gallery], np.float32), ["p"], reversed_ids, msd_order="gallery")
    assert gallery["mSD"] == pytest.approx(100 * calc_pnr * calc_asp, abs=1e-4)
    for backend in ("torch", "numba"):
        if backend == "numba" and not numba_available():
            continue
        same = retrieval_metrics(np.array([presorted], np.float32), ["p"], ids, msd_order="gallery", backend=backend)
        assert same["mSD"] == pytest.approx(ours, abs=1e-5)


def test_public_calculator_agrees_on_presorted_random_galleries() -> None:
    rng = np.random.default_rng(4)
    disagreements = 0
    for _ in range(40):
        gallery = int(rng.integers(3, 30))
        scores = rng.uniform(-1, 1, gallery).astype(np.float32)
        ids = rng.integers(0, 3, gallery)
        ids[0] = 0  # query id 0 has at least one positive
        order = np.argsort(-scores, kind="stable")
        sorted_scores, sorted_ids = scores[order].astype(np.float64).tolist(), ids[order].tolist()
        ours = retrieval_metrics(scores[None, :], [0], ids)["mSD"]
        assert ours == pytest.approx(100 * public_calculator_sd(sorted_scores, sorted_ids, 0), abs=1e-5)
        unsorted = 100 * public_calculator_sd(scores.astype(np.float64).tolist(), ids.tolist(), 0)
        disagreements += not math.isclose(ours, unsorted, abs_tol=1e-5)
    assert disagreements > 30  # on shuffled galleries the calculator gives another number


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_gallery_msd_order_matches_the_public_calculator_on_random_cases(backend: str) -> None:
    """``msd_order="gallery"`` = an independent transcription of the public calculator; ``ranked`` differs."""
    if backend == "numba" and not numba_available():
        pytest.skip("numba not installed")
    rng = np.random.default_rng(12)
    queries, gallery, identities = 40, 60, 12
    gallery_ids = rng.integers(0, identities, gallery)
    query_ids = rng.integers(0, identities, queries)
    # a trained-model-like case: cosines with noise, positives 0.4 higher (R1 ~ 80 %)
    signal = 0.4 * (query_ids[:, None] == gallery_ids[None, :])
    sim = np.clip(rng.normal(0.0, 0.2, (queries, gallery)) + signal, -1, 1).astype(np.float32)
    evaluated = [i for i in range(queries) if (gallery_ids == query_ids[i]).any()]
    rows = sim.astype(np.float64).tolist()
    expected = 100 * np.mean([public_calculator_sd(rows[i], gallery_ids.tolist(), query_ids[i]) for i in evaluated])
    got = retrieval_metrics(sim, query_ids, gallery_ids, msd_order="gallery", backend=backend, chunk_size=7)
    ranked = retrieval_metrics(sim, query_ids, gallery_ids, backend=backend)
    assert got["mSD"] == pytest.approx(expected, abs=1e-4)
    assert ranked["mSD"] == pytest.approx(reference_metrics(sim, query_ids, gallery_ids)["mSD"], abs=1e-4)
    assert abs(got["mSD"] - ranked["mSD"]) > 3.0  # the two orders differ by points (here ~8), not rounding
    assert {k: got[k] for k in ("R1", "mAP", "mINP")} == {k: ranked[k] for k in ("R1", "mAP", "mINP")}
    with pytest.raises(InputError, match="msd_order"):
        retrieval_metrics(sim, query_ids, gallery_ids, msd_order="sorted")


# ----------------------------------------------------------------------------- random cases vs reference


def random_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    queries, gallery = int(rng.integers(1, 14)), int(rng.integers(1, 18))
    identities = int(rng.integers(1, 7))
    similarity = rng.uniform(-1, 1, (queries, gallery)).astype(np.float32)
    style = rng.integers(0, 3)
    if style == 1:  # heavy ties
        similarity = np.round(similarity * 2) / 2
        similarity[similarity == 0] = rng.choice([0.0, -0.0])
    elif style == 2:  # some ties
        similarity = np.round(similarity * 20) / 20
    query_ids = rng.integers(0, identities + 1, queries)  # id == identities may be absent from the gallery
    gallery_ids = rng.integers(0, identities, gallery)
    return similarity.astype(np.float32), query_ids, gallery_ids


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_cases_match_reference(backend: str) -> None:
    rng = np.random.default_rng(2026)
    for case in range(120):
        similarity, query_ids, gallery_ids = random_case(rng)
        if case % 3 == 1:
            similarity = similarity.astype(np.float16)
        expected = reference_metrics(similarity, query_ids, gallery_ids)
        queries = similarity.shape[0]
        chunk = [1, max(1, queries - 1), queries, queries + 3][case % 4]
        matrix = torch.from_numpy(similarity) if case % 2 else similarity
        ids = (
            (torch.from_numpy(query_ids), torch.from_numpy(gallery_ids))
            if case % 5 == 0
            else (query_ids, gallery_ids)
        )
        result = retrieval_metrics(matrix, *ids, chunk_size=chunk, backend=backend)
        assert_matches_reference(result, expected)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    queries=st.integers(1, 8),
    gallery=st.integers(1, 12),
    identities=st.integers(1, 4),
    half=st.booleans(),
    chunk=st.integers(1, 10),
)
def test_hypothesis_matches_reference(data, queries, gallery, identities, half, chunk) -> None:
    values = st.sampled_from([-1.0, -0.5, -0.0, 0.0, 0.25, 0.5, 1.0]) | st.floats(-1, 1, width=32)
    rows = data.draw(
        st.lists(st.lists(values, min_size=gallery, max_size=gallery), min_size=queries, max_size=queries)
    )
    query_ids = data.draw(st.lists(st.integers(0, identities), min_size=queries, max_size=queries))
    gallery_ids = data.draw(st.lists(st.integers(0, identities - 1), min_size=gallery, max_size=gallery))
    similarity = torch.tensor(rows, dtype=torch.float16 if half else torch.float32)
    expected = reference_metrics(similarity, query_ids, gallery_ids)
    for backend in ("torch", "numba") if numba_available() else ("torch",):
        result = retrieval_metrics(similarity, query_ids, gallery_ids, chunk_size=chunk, backend=backend)
        assert_matches_reference(result, expected)


def test_backends_agree_on_larger_matrix() -> None:
    if not numba_available():
        pytest.skip("no numba")
    generator = torch.Generator().manual_seed(3)
    similarity = torch.rand(300, 2500, generator=generator) * 2 - 1
    similarity[:, ::7] = torch.round(similarity[:, ::7] * 4) / 4  # ties
    query_ids = torch.randint(0, 60, (300,), generator=generator)
    gallery_ids = torch.randint(0, 50, (2500,), generator=generator)
    fast = retrieval_metrics(similarity, query_ids, gallery_ids, backend="numba", chunk_size=64)
    plain = retrieval_metrics(similarity, query_ids, gallery_ids, backend="torch", chunk_size=300)
    for key in METRIC_KEYS:
        assert fast[key] == pytest.approx(plain[key], abs=1e-9), key
    assert fast["cmc"] == plain["cmc"] and fast["num_skipped"] == plain["num_skipped"] > 0


def test_both_directions_and_cmc_curve() -> None:
    rng = np.random.default_rng(7)
    similarity = rng.uniform(-1, 1, (9, 6)).astype(np.float32)
    text_ids, image_ids = rng.integers(0, 4, 9), rng.integers(0, 4, 6)
    both = evaluate_both_directions(similarity, text_ids, image_ids, ks=(1, 2))
    assert set(both) == {"t2i", "i2t"} and "R2" in both["t2i"]
    custom = reference_metrics(similarity, text_ids, image_ids, ks=(1, 2))
    assert both["t2i"]["R2"] == pytest.approx(custom["R2"]) and "R5" not in both["t2i"]
    expected_t2i = reference_metrics(similarity, text_ids, image_ids, ks=(1, 5, 10))
    expected_i2t = reference_metrics(similarity.T, image_ids, text_ids, ks=(1, 5, 10))
    both = evaluate_both_directions(torch.from_numpy(similarity), text_ids, image_ids)
    assert_matches_reference(both["t2i"], expected_t2i)
    assert_matches_reference(both["i2t"], expected_i2t)
    curve = cmc_curve(similarity, text_ids, image_ids, max_rank=6)
    np.testing.assert_allclose(curve, expected_t2i["cmc"][:6], atol=TOLERANCE)
    assert curve.shape == (6,) and np.all(np.diff(curve) >= 0)


def test_string_ids_and_float64_input() -> None:
    similarity = np.array([[0.2, 0.9, 0.1], [0.5, 0.4, 0.3]])
    result = retrieval_metrics(similarity, ["bob", "ann"], ["ann", "bob", "ann"])
    expected = reference_metrics(similarity, ["bob", "ann"], ["ann", "bob", "ann"])
    assert_matches_reference(result, expected)
    assert result["R1"] == 100.0


def test_non_cosine_scores_without_msd() -> None:
    logits = np.array([[12.0, -3.0, 40.0], [5.0, 7.0, -1.0]], np.float32)
    with pytest.raises(InputError, match="compute_msd=False"):
        retrieval_metrics(logits, [0, 1], [0, 1, 0])
    result = retrieval_metrics(logits, [0, 1], [0, 1, 0], compute_msd=False)
    assert math.isnan(result["mSD"])
    assert result["R1"] == 100.0 and result["mAP"] == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"similarity": np.array([[0.1, float("nan")]], np.float32)}, "NaN at \\(query 0, gallery 1\\)"),
        ({"similarity": np.zeros((2, 2), np.float32)}, "query_ids: 1 ids for 2"),
        ({"gallery_ids": [0, 1, 2]}, "gallery_ids: 3 ids for 2"),
        ({"similarity": np.zeros(3, np.float32)}, "2-D"),
        ({"similarity": np.zeros((1, 2), np.int64)}, "floating-point"),
        ({"similarity": [[0.1, 0.2]]}, "torch.Tensor or numpy.ndarray"),
        ({"query_ids": [0.5]}, "query_ids: ids must be integers"),
        ({"ks": (0, 5)}, "ks:"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"query_ids": ["a"]}, "not comparable"),
        ({"backend": "fortran"}, "backend"),
    ],
)
def test_bad_input_raises_input_error(kwargs: dict, message: str) -> None:
    arguments = {"similarity": np.zeros((1, 2), np.float32), "query_ids": [0], "gallery_ids": [0, 1]} | kwargs
    with pytest.raises(InputError, match=message):
        retrieval_metrics(
            arguments.pop("similarity"), arguments.pop("query_ids"), arguments.pop("gallery_ids"), **arguments
        )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensor_matches_cpu() -> None:
    generator = torch.Generator().manual_seed(11)
    similarity = (torch.rand(200, 700, generator=generator) * 2 - 1).half()
    query_ids = torch.randint(0, 40, (200,), generator=generator)
    gallery_ids = torch.randint(0, 35, (700,), generator=generator)
    cpu = retrieval_metrics(similarity, query_ids, gallery_ids, backend="torch")
    gpu = retrieval_metrics(similarity.cuda(), query_ids.cuda(), gallery_ids.cuda(), chunk_size=33)
    for key in METRIC_KEYS:
        assert gpu[key] == pytest.approx(cpu[key], abs=1e-9), key


def test_chance_rank1_is_the_share_of_positives():
    from eval.metrics import chance_rank1

    assert chance_rank1(np.array([1, 2]), np.array([1, 1, 2, 3])) == pytest.approx((2 / 4 + 1 / 4) / 2 * 100)
    assert chance_rank1([5], [1, 2]) == 0.0  # a query whose identity is not in the gallery
