"""Protocol tables (seed 002 Tables 3/4 layout): every table names its mSD order, a re-ranked checkpoint
adds a stage-2 row, protocol.json records the order; ``msd_order`` reaches every checkpoint evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import training.protocol as protocol
from training.config import BenchmarkSourceConfig


def _summary(order: str, r1: float, rerank_r1: float | None) -> dict:
    t2i = {"R1": r1, "mAP": r1 / 2, "mSD": 10.0}
    return {"name": "x", "num_queries": 4, "num_gallery": 2, "msd_order": order, "rerank_top_k": 5 if rerank_r1 else 0,
            "t2i": t2i, "i2t": t2i, "cmc": [r1] * 3,
            "t2i_rerank": None if rerank_r1 is None else {"R1": rerank_r1, "mAP": rerank_r1 / 2, "mSD": float("nan")}}


@pytest.mark.parametrize("order", ["ranked", "gallery"])
def test_tables_name_the_msd_order_and_show_both_stages(tmp_path: Path, monkeypatch, order: str) -> None:
    calls = []

    def fake_evaluate(path, targets, **kw):
        calls.append(kw)
        reranked = str(path).endswith("sew.pt")
        return {t.display: _summary(kw["msd_order"] or "ranked", 40.0, 55.0 if reranked else None) for t in targets}

    monkeypatch.setattr(protocol, "evaluate_checkpoint", fake_evaluate)
    for name in ("pre.pt", "sew.pt"):
        (tmp_path / name).write_bytes(b"")
    bench = BenchmarkSourceConfig(name="cuhk-pedes", annotations=tmp_path, images=tmp_path, label="Synthetic")
    cfg = protocol.ProtocolConfig(
        benchmarks=[bench],
        direct_transfer=[{"init": "Pretrained", "checkpoint": tmp_path / "pre.pt"}],
        finetune=[{"init": "Pretrained", "source": "Synthetic", "checkpoint": tmp_path / "sew.pt"}],
        msd_order=order,
    )
    out = tmp_path / "tables"
    payload = protocol.run_protocol(cfg, out)
    assert all(kw["msd_order"] == order for kw in calls)
    assert payload["msd_order"] == order
    assert json.loads((out / "protocol.json").read_text())["msd_order"] == order
    direct = (out / "direct_transfer.md").read_text()
    finetune = (out / "finetune.md").read_text()
    expected_note = "mSD order: " + ("ranked-list order" if order == "ranked" else "gallery order")
    assert expected_note in direct and expected_note in finetune
    assert "| Pretrained | Synthetic | 40.00 | 20.00 |" in finetune
    assert "|  | Synthetic + re-rank | 55.00 | 27.50 |" in finetune  # stage 2 of the re-ranking checkpoint
    assert "re-rank" not in direct  # the pretrained checkpoint does not re-rank
