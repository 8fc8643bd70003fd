"""``pedes train`` resume and bad input in real processes: ``--smoke --resume latest`` resumes the latest
smoke run (no new run folder), a truncated latest checkpoint falls back to the previous good one with a
warning, every checkpoint corrupt fails naming both, and a run that fails on bad input leaves no run
folder behind (docs/training.md, checkpoints and resume)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "configs" / "finetune_irra.yaml"


def pedes(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", *args], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=800)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_smoke_resume_latest_resumes_and_falls_back_from_a_truncated_checkpoint(tmp_path):
    common = ["train", "--config", str(RECIPE), "--smoke", "--set", f"engine.output_dir={tmp_path / 'runs'}",
              "--set", "engine.progress=false"]
    first = pedes(tmp_path, *common)
    assert first.returncode == 0, first.stderr
    (run,) = list((tmp_path / "runs" / "smoke").iterdir())
    before = json.loads((run / "results.json").read_text())
    step6, step3 = run / "checkpoints" / "step-00000006.pt", run / "checkpoints" / "step-00000003.pt"
    step6.write_bytes(step6.read_bytes()[:1000])  # a kill while the file was being copied elsewhere

    again = pedes(tmp_path, *common, "--resume", "latest")
    assert again.returncode == 0, again.stderr
    assert list((tmp_path / "runs" / "smoke").iterdir()) == [run]  # resumed, no new run folder
    assert f"checkpoint {step6} cannot be loaded; resuming from the previous good one, {step3}" in again.stderr
    after = json.loads((run / "results.json").read_text())
    assert after["global_step"] == 6
    assert after["test"]["synthetic"]["t2i"] == pytest.approx(before["test"]["synthetic"]["t2i"])  # same batches

    for p in (step3, step6):
        p.write_bytes(b"not a checkpoint")
    broken = pedes(tmp_path, *common, "--resume", "latest")
    assert broken.returncode == 2 and "Traceback" not in broken.stderr, broken.stderr
    assert str(step6) in broken.stderr and str(step3) in broken.stderr and "cannot resume" in broken.stderr


def test_bad_input_leaves_no_run_folder(tmp_path):
    (tmp_path / "not-a-corpus").mkdir()
    res = pedes(tmp_path, "train", "--config", str(REPO / "configs" / "pretrain_nam.yaml"),
                "--set", f"data.corpus.root={tmp_path / 'not-a-corpus'}", "--set", f"engine.output_dir={tmp_path / 'runs'}",
                "--set", "engine.device=cpu")
    assert res.returncode == 2 and "not a corpus" in res.stderr, res.stderr
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []
