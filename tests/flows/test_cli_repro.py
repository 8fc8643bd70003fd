"""``pedes repro`` through its console script in a fresh process: with the "no pretraining" arm only (no
captioning), the world is rendered, the arm is trained and evaluated, and table.md / results.json / r1.png
are written in the paper's layout; a rerun reuses the finished run instead of training again."""

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
    cfg.update(recipe=str(REPO / "configs" / "cpu_tiny.yaml"), seeds=1, finetune_epochs=1, arms=["none"],
               clothes_change=None)
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
    (run,) = results["runs"]
    assert run["arm"] == "none" and 0 <= run["finetune"]["R1"] <= 100 and 0 <= run["direct"]["R1"] <= 100
    assert results["meta"]["target_test_ids"] == 8 and results["chance_r1"] > 0
    first_run = Path(run["finetune_run"])
    again = _run(["repro", "--out", "result", "-c", str(path)], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((out / "results.json").read_text())["runs"][0]["finetune_run"] == str(first_run)
    assert len(list((out / "runs").glob("finetune-none-s0*"))) == 1
