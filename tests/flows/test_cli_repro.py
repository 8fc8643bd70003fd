"""``pedes repro`` through its console script in a fresh process: with the "no pretraining" arm only (no
captioning), the world is rendered, the arm is trained and evaluated, and table.md / results.json / r1.png
are written in the paper's layout; a rerun reuses the finished runs instead of training again. The two seeds
train in two worker processes (``parallel_runs``) that report to the command's one temporary Prefect API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PEDES = Path(sys.executable).parent / "pedes"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return subprocess.run([str(PEDES), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_repro_cli_writes_the_table_and_resumes(tmp_path):
    cfg = yaml.safe_load((REPO / "configs" / "repro_quick.yaml").read_text())
    cfg.update(recipe=str(REPO / "configs" / "cpu_tiny.yaml"), seeds=2, finetune_epochs=1, arms=["none"],
               clothes_change=None, parallel_runs=2)
    cfg["world"] = {"source_identities": 4, "source_images_per_identity": 1, "target_identities": 40,
                    "target_images_per_identity": 2, "image_size": [64, 32]}
    path = tmp_path / "repro.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = _run(["repro", "--out", "result", "-c", str(path)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = tmp_path / "result"
    results = json.loads((out / "results.json").read_text())
    assert (out / "table.md").is_file() and (out / "r1.png").is_file()
    assert "| No pretraining |" in proc.stdout and "Directions of the papers" in proc.stdout
    runs = results["runs"]
    assert [(r["arm"], r["seed"]) for r in runs] == [("none", 0), ("none", 1)]
    for run in runs:
        assert 0 <= run["finetune"]["R1"] <= 100 and 0 <= run["direct"]["R1"] <= 100
    assert results["meta"]["target_test_ids"] == 8 and results["chance_r1"] > 0
    # the workers used the command's temporary API server instead of starting their own (their logs are filed
    # in the same pedes.log)
    log = (out / "pedes.log").read_text()
    assert log.count("Starting temporary server") == 1 and log.count("validation R1") == 2
    first_runs = [r["finetune_run"] for r in runs]
    again = _run(["repro", "--out", "result", "-c", str(path)], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [r["finetune_run"] for r in json.loads((out / "results.json").read_text())["runs"]] == first_runs
    assert len(list((out / "runs").glob("finetune-none-s0*"))) == 1
