"""style-clusters, mine-templates and train flows run locally under the Prefect test harness and leave
their outputs and markdown artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from flows.registry import flow_names, run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")

REPO = Path(__file__).resolve().parents[2]


def _artifact(key: str) -> str:
    """The newest artifact with ``key``, read from the API (Prefect 3.8.8's ``Artifact.get`` sends a filter
    body its own server refuses with 422)."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        resp = client._client.post("/artifacts/filter", json={"artifacts": {"key": {"any_": [key]}},
                                                               "sort": "CREATED_DESC", "limit": 1})
    resp.raise_for_status()
    arts = resp.json()
    assert arts, key
    return str(arts[0]["data"])


def test_flow_names():
    assert flow_names() == ["build-corpus", "style-clusters", "mine-templates", "train", "repro"]


def test_style_clusters_flow(tmp_path, synth_small):
    cfg = tmp_path / "cfg" / "styles.yaml"
    cfg.parent.mkdir()
    # paths relative to the config file, random-weight CLIP text tower, rule neutralizer (as the styles tests)
    cfg.write_text(yaml.safe_dump({
        "source": str(synth_small / "reid_raw.json"),
        "out": "../styles-out",
        "styles": {"neutralizer": "rules", "embed": {"model": "ViT-B-32", "pretrained": None},
                   "cluster": {"algorithm": "kmeans-ups", "k_max": 4}, "scatter_points": 200},
    }))
    out = run_flow("style-clusters", cfg)
    styles = tmp_path / "styles-out"
    assert out["out"] == str(styles) and out["styles"] >= 1 and out["texts"] > 0
    bank = json.loads((styles / "bank.json").read_text())
    assert len(bank) == out["styles"] and all(e["prompt"] for e in bank)
    assert (styles / "report.html").is_file() and (styles / "flow.config.resolved.yaml").is_file()
    md = _artifact("style-clusters-summary")
    assert f"{out['texts']} texts → {out['styles']} styles" in md
    assert "report.html" in _artifact("style-clusters-inspector")


def test_mine_templates_flow(tmp_path, synth_small):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(yaml.safe_dump({"captions": str(synth_small / "reid_raw.json"), "out": "bank/mined.json",
                                   "max_templates": 50}))
    out = run_flow("mine-templates", cfg, ["threshold=0.95"])
    bank_path = tmp_path / "bank" / "mined.json"  # relative to the config file
    assert out["bank"] == str(bank_path)
    bank = json.loads(bank_path.read_text())
    assert bank["format"] == "pedes-template-bank" and 0 < len(bank["templates"]) <= 50
    assert bank["stats"]["written"] == len(bank["templates"]) == out["stats"]["written"]
    assert all(t["slots"] and "[" in t["text"] for t in bank["templates"])  # slot templates
    assert f"{len(bank['templates'])} templates" in _artifact("mine-templates-summary")


TINY = [
    "model.arch=tiny", "model.image_size=[64,32]", "model.nam_layer=1", "data.num_workers=0",
    "data.batch_size=16", "schedule.epochs=1", "schedule.max_steps=3", "engine.progress=false",
    "engine.tensorboard=false", "optim.lr=1e-4", "eval.batch_size=64",
]


def test_train_flow_pretrain_finetune_evaluate(tmp_path, synth_small):
    from training.data.benchmarks import load_benchmark
    from training.data.import_corpus import import_benchmark

    ann, imgs = synth_small / "reid_raw.json", synth_small / "imgs"
    corpus = tmp_path / "corpus"
    import_benchmark(load_benchmark("cuhk-pedes", ann, imgs), corpus, name="gt", splits=["train"])
    cfg = tmp_path / "train.yaml"
    cfg.write_text(yaml.safe_dump({
        "out_dir": "out", "corpus": "corpus",
        "pretrain_recipe": str(REPO / "configs" / "pretrain_nam.yaml"),
        "finetune_recipe": str(REPO / "configs" / "finetune_irra.yaml"),
        "benchmarks": [{"name": "cuhk-pedes", "annotations": str(ann), "images": str(imgs), "label": "Synthetic"}],
        "label": "Ours (synthetic corpus)", "device": "cpu", "overrides": TINY,
    }))
    out = run_flow("train", cfg)
    assert out["corpus"] == str(corpus)
    assert Path(out["pretrain_run"]).is_dir() and Path(out["finetune_runs"]["Synthetic"]).is_dir()
    assert Path(out["pretrain_run"]).parent == tmp_path / "out" / "runs"
    direct = Path(out["tables"]["direct_transfer"]).read_text()
    assert "| Ours (synthetic corpus) | " in direct
    assert "| Ours (synthetic corpus) | Synthetic | " in Path(out["tables"]["finetune"]).read_text()
    assert "Ours (synthetic corpus)" in _artifact("train-direct-transfer")
    assert "Synthetic" in _artifact("train-finetune")
    assert json.loads((tmp_path / "out" / "train-flow-summary.json").read_text())["pretrain_run"] == out["pretrain_run"]


def test_train_flow_config_needs_exactly_one_corpus_source(tmp_path):
    from flows.train_flow import load_train_flow_config
    from pedes_core.errors import ConfigError

    cfg = tmp_path / "train.yaml"
    cfg.write_text(yaml.safe_dump({"out_dir": "out", "pretrain_recipe": str(REPO / "configs" / "pretrain_nam.yaml")}))
    with pytest.raises(ConfigError, match="exactly one of corpus"):
        load_train_flow_config(cfg)
