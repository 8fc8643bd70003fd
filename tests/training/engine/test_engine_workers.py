"""DataLoader workers in the real training loop: the same run with 0 workers and with 2 workers of each
start method gives the same loss trajectory (augmentation is seeded per sample, not per worker)."""

from __future__ import annotations

import pytest
from engine_fixtures import tiny_recipe, train_losses

from training.engine.trainer import train


@pytest.mark.parametrize("start_method", ["forkserver", "fork"])
def test_worker_processes_reproduce_the_single_process_run(color_corpus, tmp_path, start_method):
    serial = train(tiny_recipe(color_corpus, tmp_path / "serial"))
    parallel = train(tiny_recipe(color_corpus, tmp_path / "workers",
                                 data={"num_workers": 2, "worker_start_method": start_method}))
    expected, got = train_losses(serial.run_dir), train_losses(parallel.run_dir)
    assert [step for step, _ in got] == [step for step, _ in expected] and expected
    assert [loss for _, loss in got] == pytest.approx([loss for _, loss in expected], rel=1e-5)
