"""The OpenMP nesting guard (training/engine/cpu_threads.py), checked in fresh processes so that the
result does not depend on what earlier tests did to this one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _probe(code: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_MAX_ACTIVE_LEVELS"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


LEVELS = "from training.engine.cpu_threads import openmp_max_active_levels as lv"


def test_torch_alone_allows_nested_openmp_which_the_guard_turns_off():
    """Without the guard the loaded runtime allows nested teams (this is what made CPU training ~30x slower
    after any ``torch.set_num_threads`` call); after it, one level."""
    pytest.importorskip("torch")
    got = _probe(
        "import json, torch\n"
        "torch.set_num_threads(1); torch.set_num_threads(2)\n"
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('ct', 'training/engine/cpu_threads.py')\n"
        "ct = importlib.util.module_from_spec(spec); spec.loader.exec_module(ct)\n"  # not via `import training`
        "before = ct.openmp_max_active_levels()\n"
        "runtimes = ct.limit_openmp_nesting()\n"
        "print(json.dumps({'before': before, 'after': ct.openmp_max_active_levels(), 'runtimes': runtimes}))"
    )
    if got["before"] is None:
        pytest.skip("no OpenMP runtime loaded by this torch build")
    assert got["before"] > 1
    assert got["after"] == 1 and got["runtimes"]


def test_importing_training_sets_the_guard_before_and_after_torch():
    pytest.importorskip("torch")
    # training first: only the environment variable can act, and the runtime torch loads reads it
    first = _probe(f"import json, training, os, torch\n{LEVELS}\n"
                   "print(json.dumps({'env': os.environ.get('OMP_MAX_ACTIVE_LEVELS'), 'levels': lv()}))")
    # torch first, then vLLM-style thread toggling, then training: the loaded runtime is set directly
    later = _probe(f"import json, torch\ntorch.set_num_threads(1); torch.set_num_threads(2)\nimport training\n{LEVELS}\n"
                   "print(json.dumps({'levels': lv()}))")
    assert first["env"] == "1"
    assert first["levels"] in (1, None) and later["levels"] in (1, None)
    if first["levels"] is None:
        pytest.skip("no OpenMP runtime loaded by this torch build")


def test_guard_applies_an_explicit_user_setting_then_restores():
    from training.engine.cpu_threads import ENV_VAR, limit_openmp_nesting, openmp_max_active_levels

    old = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = "2"
    try:
        set_in = limit_openmp_nesting()
        assert os.environ[ENV_VAR] == "2"  # an explicit user choice is kept ...
        if set_in:
            assert openmp_max_active_levels() == 2  # ... and applied
    finally:
        if old is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = old
        limit_openmp_nesting()  # back to one level for the rest of this test process
    if set_in:
        assert openmp_max_active_levels() == int(os.environ[ENV_VAR])
