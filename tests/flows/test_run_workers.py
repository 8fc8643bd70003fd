"""``flows.run_workers.run_tasks``: with ``workers`` 2 the tasks run at the same time in two worker processes
(each waits for the other's marker file, so one after the other they would time out), each with its share of
the cores as torch threads; with 1 they run in this process. Results come back in submission order."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from prefect import flow, task

from flows.run_workers import run_tasks, threads_per_worker

WAIT_S = 60.0


@task(persist_result=False)
def meet(folder: str, me: str, other: str) -> dict:
    """Write ``me``'s marker, then wait (at most WAIT_S) for ``other``'s: True only if both ran at once."""
    import torch

    Path(folder, me).write_text(str(os.getpid()))
    deadline = time.monotonic() + WAIT_S
    while not Path(folder, other).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return {"name": me, "pid": os.getpid(), "met": Path(folder, other).exists(), "threads": torch.get_num_threads()}


@task(persist_result=False)
def whoami(name: str) -> dict:
    return {"name": name, "pid": os.getpid()}


@flow(persist_result=False)
def two_meetings(folder: str) -> list[dict]:
    jobs = [(meet, {"folder": folder, "me": "a", "other": "b"}), (meet, {"folder": folder, "me": "b", "other": "a"})]
    return run_tasks(jobs, workers=2, log_dir=folder)


@flow(persist_result=False)
def serial(names: list[str]) -> list[dict]:
    return run_tasks([(whoami, {"name": n}) for n in names], workers=1)


@pytest.mark.usefixtures("prefect_harness")
def test_two_workers_run_tasks_at_once_in_their_own_processes(tmp_path):
    results = two_meetings(str(tmp_path))
    assert [r["name"] for r in results] == ["a", "b"]  # submission order
    assert all(r["met"] for r in results)  # both were running at the same time
    pids = {r["pid"] for r in results}
    assert len(pids) == 2 and os.getpid() not in pids
    assert all(r["threads"] == threads_per_worker(2) for r in results)


@pytest.mark.usefixtures("prefect_harness")
def test_one_worker_runs_in_this_process_in_order():
    results = serial(["x", "y", "z"])
    assert [r["name"] for r in results] == ["x", "y", "z"]
    assert {r["pid"] for r in results} == {os.getpid()}
