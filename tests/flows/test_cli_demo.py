"""``pedes demo`` (what ``make demo`` runs), as a user runs it: the console script in a fresh process,
Prefect's ephemeral API, a config file with paths relative to it — synth, build-corpus through the real CPU
vLLM engine with the tiny random VLM, style-clusters, corpus, pretrain/fine-tune/evaluate; and a bad config
exits 2 before work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parents[2]
PEDES = Path(sys.executable).parent / "pedes"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return subprocess.run([str(PEDES), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _config(tmp_path: Path, **train: object) -> Path:
    demo = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    demo["out_dir"] = "out"
    demo["synth"].update(identities=12, images_per_identity=3)
    demo["caption"].update(max_images=4, max_tokens=8, shard_size=2)  # tiny random LLaVA on the CPU vLLM engine
    demo["styles"]["styles"] = {"neutralizer": "rules", "embed": {"model": "ViT-B-32", "pretrained": None},
                                "cluster": {"algorithm": "kmeans-ups", "k_max": 3}, "scatter_points": 100}
    demo["train"].update({"pretrain_recipe": str(REPO / "configs" / "pretrain_nam.yaml"),
                          "finetune_recipe": str(REPO / "configs" / "finetune_irra.yaml"), **train})
    demo["train"]["overrides"] += ["schedule.epochs=1", "schedule.max_steps=2"]
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(demo))
    return path


def test_demo_end_to_end_from_another_directory(tmp_path):
    cfg = _config(tmp_path)
    proc = _run(["demo", "--config", str(cfg)], cwd=tmp_path.parent)  # not the repo root, not the config dir
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out"
    summary = json.loads((out / "demo-summary.json").read_text())
    assert "PEDES Forge demo finished" in proc.stdout and str(out / "corpus") in proc.stdout
    assert summary["corpus"] == str(out / "corpus") and summary["import"]["rows"] > 0
    rows = pq.read_table(sorted((out / "corpus" / "shards").glob("captions-*.parquet"))).num_rows
    assert rows == summary["corpus_rows"] == summary["import"]["rows"]
    assert (out / "config.resolved.yaml").is_file()
    assert "| Demo (synthetic corpus) |" in (out / "tables" / "direct_transfer.md").read_text()
    assert json.loads((Path(summary["finetune_run"]) / "results.json").read_text())["test"]["Synthetic"]["num_queries"] > 0
    # build-corpus through the real vLLM engine with the random-weights VLM: every caption is accounted
    # for (accepted or rejected with a reason), the corpus validates, the run summary is where it says
    from caption_gen.corpus.validate import validate_corpus

    vlm = summary["vlm_captions"]
    assert summary["vlm_corpus"] == str(out / "vlm-corpus") and str(out / "vlm-corpus") in proc.stdout
    assert vlm["accepted"] + sum(vlm["rejects_by_reason"].values()) == 4
    assert validate_corpus(out / "vlm-corpus").ok
    assert "build-corpus: demo-vlm" in Path(summary["vlm_corpus_summary"]).read_text()
    models = json.loads((out / "vlm-corpus" / "corpus.json").read_text())["models"]
    assert models == ["tiny-random-llava"]
    # style-clusters on the synthetic benchmark captions
    assert json.loads(Path(summary["style_bank"]).read_text()) and Path(summary["style_inspector"]).is_file()
    assert summary["style_bank"] in proc.stdout and "random weights" in proc.stdout


def test_demo_bad_config_exits_2_naming_the_field(tmp_path):
    cfg = _config(tmp_path, pretrain_recipe=str(tmp_path / "missing.yaml"))
    proc = _run(["demo", "--config", str(cfg)], cwd=tmp_path)
    assert proc.returncode == 2
    assert "train.pretrain_recipe" in proc.stderr and str(cfg) in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
