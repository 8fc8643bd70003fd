"""The reproduction's captioners: a noisy captioner declared ``from_captioner`` continues the trained clean
one (its weights and tokenizer), and bad references are config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from safetensors.torch import load_file

from flows.repro_flow import train_captioners
from tests.captioner_settings import MICRO_CAPTIONER
from training.repro.config import CaptioningConfig, ReproConfig

REPO = Path(__file__).resolve().parents[2]


def test_noisy_captioner_continues_the_clean_one(tmp_path, prefect_harness):
    cfg = ReproConfig(recipe=REPO / "configs" / "cpu_tiny.yaml", out=tmp_path / "out", captioning={
        "clean": [{"name": "cap-a", "seed": 0}],
        "noisy": [{"name": "cap-a-noisy", "seed": 1, "noise": 0.3, "from_captioner": "cap-a", "steps": 2}],
        "captioner": {**MICRO_CAPTIONER, "vision_steps": 2}, "cache_dir": str(tmp_path / "cache")})
    paths = train_captioners(cfg, {"noisy"})  # the clean parent is trained first even when only noisy is needed
    assert set(paths) == {"cap-a", "cap-a-noisy"}
    clean, noisy = (json.loads((Path(paths[n]) / "captioner.json").read_text()) for n in ("cap-a", "cap-a-noisy"))
    assert noisy["config"]["init_from"] == paths["cap-a"] and noisy["config"]["steps"] == 2
    assert clean["config"]["init_from"] is None and clean["key"] != noisy["key"]
    assert sum("vision_step" in h for h in clean["history"]) == 2  # the parent: vision stage, then joint
    assert len(noisy["history"]) == 2 and noisy["config"]["vision_steps"] == 0  # two joint steps, no vision stage
    a, b = (load_file(str(Path(paths[n]) / "model.safetensors")) for n in ("cap-a", "cap-a-noisy"))
    assert a.keys() == b.keys() and any(not (a[k] == b[k]).all() for k in a)
    assert (Path(paths["cap-a"]) / "tokenizer.json").read_text() == (Path(paths["cap-a-noisy"]) / "tokenizer.json").read_text()
    # the continuation (seed 1) trains on its parent's people: nothing rendered for seed 10001
    assert noisy["synthetic"] == clean["synthetic"]
    assert [p.name for p in (tmp_path / "cache").glob("synth-*")] == [Path(clean["synthetic"]).name]


def test_clean_and_noisy_captioners_continue_a_common_base(tmp_path, prefect_harness):
    cfg = ReproConfig(recipe=REPO / "configs" / "cpu_tiny.yaml", out=tmp_path / "out", captioning={
        "bases": [{"name": "base", "seed": 0}],
        "clean": [{"name": "cap-a", "seed": 0, "from_captioner": "base", "steps": 2}],
        "noisy": [{"name": "cap-a-noisy", "seed": 0, "noise": 0.3, "from_captioner": "base", "steps": 2}],
        "captioner": {**MICRO_CAPTIONER, "vision_steps": 2}, "cache_dir": str(tmp_path / "cache")})
    paths = train_captioners(cfg, {"clean", "noisy"})
    assert set(paths) == {"base", "cap-a", "cap-a-noisy"}
    cards = {n: json.loads((Path(p) / "captioner.json").read_text())["config"] for n, p in paths.items()}
    assert cards["cap-a"]["init_from"] == cards["cap-a-noisy"]["init_from"] == paths["base"]
    # the twins differ by the noise alone
    differ = {k for k in cards["cap-a"] if cards["cap-a"][k] != cards["cap-a-noisy"][k]}
    assert differ == {"noise"}, differ


@pytest.mark.parametrize("noisy", [
    [{"name": "x", "from_captioner": "nope"}],
    [{"name": "cap-a", "noise": 0.3}],
    [{"name": "x", "from_captioner": "cap-b"}],  # cap-b is itself a continuation
])
def test_bad_captioner_references_are_config_errors(noisy):
    with pytest.raises(ValidationError, match="from_captioner|unique"):
        CaptioningConfig(clean=[{"name": "cap-a"}, {"name": "cap-b", "from_captioner": "cap-a"}], noisy=noisy)


def test_a_base_is_trained_from_scratch():
    with pytest.raises(ValidationError, match="a base is trained from scratch"):
        CaptioningConfig(bases=[{"name": "b0"}, {"name": "b1", "from_captioner": "b0"}], clean=[{"name": "cap-a"}])
