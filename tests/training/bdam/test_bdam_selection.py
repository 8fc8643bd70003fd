"""Model selection with two-stage retrieval (BDAM, seed 000 §3.4): the best checkpoint is chosen on stage 2."""

from eval.evaluator import EvalResult
from training.engine.trainer import selection_stage


def _result(rerank: dict | None) -> EvalResult:
    return EvalResult("val", 4, 4, {"R1": 10.0, "mAP": 5.0}, {"R1": 1.0}, t2i_rerank=rerank, rerank_top_k=2 if rerank else 0)


def test_selection_uses_stage_two_when_reranking() -> None:
    stage, metrics = selection_stage(_result({"R1": 30.0, "mAP": 20.0}))
    assert stage == "t2i_rerank" and metrics["R1"] == 30.0


def test_selection_uses_stage_one_without_reranking() -> None:
    stage, metrics = selection_stage(_result(None))
    assert stage == "t2i" and metrics["R1"] == 10.0
