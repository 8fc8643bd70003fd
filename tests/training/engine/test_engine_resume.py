"""Resume: a run interrupted after N optimizer steps and resumed with ``resume="latest"`` ends with the
same weights (and NAM store) as an uninterrupted run with the same seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from engine_fixtures import tiny_recipe, train_losses

from training.engine import checkpoint as ck
from training.engine.trainer import Trainer, train


class Interrupted(Exception):
    """Injected fault: stands in for a crash right after a checkpoint was written."""


def _final_model(run_dir: Path) -> dict[str, torch.Tensor]:
    return ck.load_checkpoint(run_dir / "checkpoints" / ck.FINAL_NAME)["model"]


@pytest.mark.parametrize("method", ["sdm", "nam_sdm"])
def test_interrupted_and_resumed_equals_uninterrupted(color_corpus, tmp_path, monkeypatch, method):


    recipe_a = tiny_recipe(color_corpus, tmp_path / "a", method={"name": method})
    full = train(recipe_a)

    recipe_b = tiny_recipe(color_corpus, tmp_path / "b", method={"name": method})
    original = Trainer.save_step_checkpoint
    stop_at = 9  # mid second epoch (7 steps per epoch), after the NAM store swapped once

    def crash_after_save(self):
        path = original(self)
        if self.progress["global_step"] == stop_at:
            raise Interrupted
        return path

    monkeypatch.setattr(Trainer, "save_step_checkpoint", crash_after_save)
    with pytest.raises(Interrupted):
        train(recipe_b)
    monkeypatch.setattr(Trainer, "save_step_checkpoint", original)
    run_b = next((tmp_path / "b").iterdir())
    assert not (run_b / "checkpoints" / ck.FINAL_NAME).exists()
    assert ck.latest_checkpoint(run_b).name == f"step-{stop_at:08d}.pt"

    resumed = train(recipe_b, resume="latest")
    assert resumed.run_dir == run_b
    assert resumed.global_step == full.global_step

    a, b = _final_model(full.run_dir), _final_model(run_b)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=f"parameter {key} differs")
    # the loss trajectory after the resume point is the same as well
    la, lb = train_losses(full.run_dir), train_losses(run_b)
    assert [s for s, _ in lb][-len(la) + stop_at :] == [s for s, _ in la][stop_at:]
    for (sa, va), (sb, vb) in zip(la[stop_at:], lb[-(len(la) - stop_at) :], strict=True):
        assert sa == sb and va == pytest.approx(vb, rel=1e-4, abs=1e-5)
    if method == "nam_sdm":
        sa = ck.load_checkpoint(full.run_dir / "checkpoints" / f"step-{full.global_step:08d}.pt")["method_state"]
        sb = ck.load_checkpoint(run_b / "checkpoints" / f"step-{full.global_step:08d}.pt")["method_state"]
        assert json.dumps(sa, default=str) == json.dumps(sb, default=str)


def test_resume_latest_without_checkpoint_is_a_config_error(color_corpus, tmp_path):
    from pedes_core.errors import ConfigError


    with pytest.raises(ConfigError, match="no checkpoint"):
        train(tiny_recipe(color_corpus, tmp_path / "none"), resume="latest")


def test_run_directories_are_never_overwritten(color_corpus, tmp_path):


    recipe = tiny_recipe(color_corpus, tmp_path, schedule={"epochs": 1, "max_steps": 2})
    first = train(recipe).run_dir
    second = train(recipe).run_dir
    assert first != second and first.is_dir() and second.is_dir()
    assert (first / "config.resolved.yaml").is_file() and (first / "results.json").is_file()
