"""``runner: {kind: ray}``: build-corpus shard tasks run on a local Ray instance (prefect-ray's RayTaskRunner,
2 CPUs, stub backend), in Ray worker processes that load the engine once and reuse it across shards."""

from __future__ import annotations

import os

import pytest
import yaml

from caption_gen.corpus.validate import validate_corpus
from flows.registry import configured_flow, get_flow

pytest.importorskip("prefect_ray")


@pytest.mark.timeout(300)
def test_build_corpus_shard_tasks_run_on_local_ray(tmp_path, synth_small, stub_config_writer, prefect_harness):
    import ray

    out = tmp_path / "corpus"
    cfg = stub_config_writer(tmp_path / "bc.yaml", synth_small / "imgs", out, kinds=["static"])
    data = yaml.safe_load(cfg.read_text())
    data["runner"] = {"kind": "ray", "num_gpus": 0, "num_cpus": 1,
                      "init_kwargs": {"num_cpus": 2, "include_dashboard": False, "log_to_driver": False}}
    cfg.write_text(yaml.safe_dump(data))
    fl, _ = configured_flow("build-corpus", cfg)
    assert type(fl.task_runner).__name__ == "RayTaskRunner"

    # the bare flow object, as a served deployment loads it (default thread runner): the shard tasks still
    # go to Ray because the flow starts the runner its config asks for (flows.runners.task_runner_for)
    s = get_flow("build-corpus").flow()(config=str(cfg), overrides=[])
    n = len(list((synth_small / "imgs").rglob("*.jpg")))
    assert s["failed_shards"] == [] and s["rows"] == n and s["shards_run"] == -(-n // 6)
    pids = {int(w.rsplit(":", 1)[1]) for w in s["workers"]}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # Ray worker processes, at most one per CPU
    assert s["engine_loads"] == len(pids) < s["shards_run"]  # engine loaded once per worker, then reused
    report = validate_corpus(out)
    assert report.ok, [str(p) for p in report.problems]
    assert not ray.is_initialized()  # the runner shut its local instance down with the flow
