"""``pedes flow list`` output, and the flows served as deployments (``flows.serve``): registered with their
schedules and parameters from YAML, and runs created from them are executed by the served runner
(``pedes serve --run-once``) in flow-run subprocesses against the test harness API."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest
import yaml

from caption_gen.corpus.validate import validate_corpus

REPO = Path(__file__).resolve().parents[2]
TINY = [
    "model.arch=tiny", "model.image_size=[64,32]", "model.nam_layer=1", "data.num_workers=0",
    "data.batch_size=16", "schedule.epochs=1", "schedule.max_steps=3", "engine.progress=false",
    "engine.tensorboard=false", "optim.lr=1e-4", "eval.batch_size=64",
]


def test_pedes_flow_list_prints_one_flow_per_line(capsys):
    from flows.cli import main

    with pytest.raises(SystemExit) as info:
        main(["flow", "list", "--names"])
    assert info.value.code in (None, 0)
    assert capsys.readouterr().out.splitlines() == ["build-corpus", "style-clusters", "mine-templates", "train", "repro"]


def test_shipped_deployments_file_validates(capsys):
    from flows.cli import main

    with pytest.raises(SystemExit) as info:
        main(["serve", "--config", str(REPO / "configs" / "deployments.yaml"), "--check"])
    assert info.value.code in (None, 0)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("build-corpus/nightly-corpus-extension: cron '0 2 * * *'")
    assert [ln.split(":")[0] for ln in lines] == ["build-corpus/nightly-corpus-extension",
                                                  "style-clusters/weekly-style-reclustering",
                                                  "mine-templates/mine-templates", "train/train",
                                                  "repro/monthly-reproduction"]


@pytest.mark.timeout(400)
def test_served_deployments_execute_their_runs(tmp_path, synth_small, stub_config_writer, prefect_harness,
                                               monkeypatch):
    from prefect import get_client

    from flows.serve import load_deployments, run_due_once

    monkeypatch.chdir(tmp_path)  # module-path entrypoints: nothing depends on the repository root
    stub_config_writer(tmp_path / "bc.yaml", synth_small / "imgs", tmp_path / "corpus",
                       kinds=["static"], shard_size=12)
    mine_cfg = tmp_path / "mine.yaml"
    mine_cfg.write_text(yaml.safe_dump({"captions": str(synth_small / "reid_raw.json"), "out": "bank/mined.json",
                                        "max_templates": 20}))
    styles_cfg = tmp_path / "styles.yaml"
    styles_cfg.write_text(yaml.safe_dump({
        "source": str(synth_small / "reid_raw.json"), "out": "styles-out",
        "styles": {"neutralizer": "rules", "embed": {"model": "ViT-B-32", "pretrained": None},
                   "cluster": {"algorithm": "kmeans-ups", "k_max": 3}, "scatter_points": 100}}))
    from training.data.benchmarks import load_benchmark
    from training.data.import_corpus import import_benchmark

    ann, imgs = synth_small / "reid_raw.json", synth_small / "imgs"
    import_benchmark(load_benchmark("cuhk-pedes", ann, imgs), tmp_path / "gt-corpus", name="gt", splits=["train"])
    train_cfg = tmp_path / "train.yaml"
    train_cfg.write_text(yaml.safe_dump({
        "out_dir": "train-out", "corpus": "gt-corpus",
        "pretrain_recipe": str(REPO / "configs" / "pretrain_nam.yaml"),
        "finetune_recipe": str(REPO / "configs" / "finetune_irra.yaml"),
        "benchmarks": [{"name": "cuhk-pedes", "annotations": str(ann), "images": str(imgs), "label": "Synthetic"}],
        "label": "served", "device": "cpu", "overrides": TINY}))
    deployments = tmp_path / "deployments.yaml"
    deployments.write_text(yaml.safe_dump({"deployments": [
        {"name": "nightly-test", "flow": "build-corpus", "config": "bc.yaml", "cron": "0 2 * * *",
         "timezone": "UTC", "tags": ["nightly"]},
        {"name": "hourly-templates", "flow": "mine-templates", "config": "mine.yaml", "interval": 3600,
         "overrides": ["threshold=0.95"]},
        {"name": "weekly-styles", "flow": "style-clusters", "config": "styles.yaml", "cron": "0 4 * * 0"},
        {"name": "train-once", "flow": "train", "config": "train.yaml"},
    ]}))
    names = ["nightly-test", "hourly-templates", "weekly-styles", "train-once"]
    assert [d.name for d in load_deployments(deployments).deployments] == names

    async def scenario() -> list[dict]:
        ids = await run_due_once(deployments, limit=1)  # registers; nothing is due yet
        async with get_client() as client:
            deps = [await client.read_deployment(i) for i in ids]
            assert [d.name for d in deps] == names
            assert deps[0].schedules[0].schedule.cron == "0 2 * * *" and deps[0].tags == ["nightly"]
            assert deps[1].schedules[0].schedule.interval.total_seconds() == 3600
            assert deps[1].parameters == {"config": str(mine_cfg.resolve()), "overrides": ["threshold=0.95"]}
            runs = [await client.create_flow_run_from_deployment(i) for i in ids]
            assert await run_due_once(deployments, limit=1) == ids  # the same deployments, now executed
            return [(await client.read_flow_run(r.id)).model_dump(mode="json") for r in runs]

    sigterm_before = signal.getsignal(signal.SIGTERM)
    finished = asyncio.run(scenario())
    assert [r["state"]["type"] for r in finished] == ["COMPLETED"] * 4, finished
    # the runner's process-wide SIGTERM handler is not left behind (forked DataLoader workers inherited it)
    assert signal.getsignal(signal.SIGTERM) == sigterm_before
    report = validate_corpus(tmp_path / "corpus")
    assert report.ok and report.checked["rows"] == len(list((synth_small / "imgs").rglob("*.jpg")))
    summary = json.loads((tmp_path / "corpus.flow" / "summary.json").read_text())
    assert summary["shards_run"] == summary["shards_total"] == 3
    bank = json.loads((tmp_path / "bank" / "mined.json").read_text())
    assert 0 < len(bank["templates"]) <= 20
    assert json.loads((tmp_path / "styles-out" / "bank.json").read_text())
    assert "| served | Synthetic | " in (tmp_path / "train-out" / "tables" / "finetune.md").read_text()
