"""Quiet by default (docs/logging.md): a flow run prints no Prefect INFO lines and no traceback (the telemetry
"database is locked" one included), its library logs land in the run folder's ``pedes.log``, and ``-v`` brings
them back to the terminal."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PEDES_", "VLLM_", "TRANSFORMERS_"))}
    env.update(PYTHONPATH=str(REPO), PREFECT_HOME=str(home))
    return subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_flow_run_is_quiet_and_logs_to_the_run_folder(synth_small, tmp_path):
    cfg = tmp_path / "mine.yaml"
    out = tmp_path / "templates" / "mined.json"
    cfg.write_text(yaml.safe_dump({"captions": str(synth_small / "reid_raw.json"), "out": str(out),
                                   "max_captions": 60, "max_templates": 10, "runner": {"kind": "thread"}}))
    quiet = _run(["flow", "run", "mine-templates", "-c", str(cfg)], tmp_path, tmp_path / "prefect-home")
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert json.loads(quiet.stdout)  # the short summary
    for noise in ("Traceback", "database is locked", "| INFO", "Beginning flow run", "Finished in state"):
        assert noise not in quiet.stderr, f"{noise!r} on the terminal:\n{quiet.stderr[-2000:]}"
    log = (tmp_path / "templates" / "pedes.log").read_text()
    assert "INFO" in log and "prefect" in log and "Finished in state" in log

    loud = _run(["-v", "flow", "run", "mine-templates", "-c", str(cfg)], tmp_path, tmp_path / "prefect-home")
    assert loud.returncode == 0, loud.stderr[-3000:]
    assert "Finished in state" in loud.stderr
    assert "Traceback" not in loud.stderr


def test_console_filter_rules():
    from flows.cli.logs import ENV_VERBOSE, QuietConsoleHandler

    h = QuietConsoleHandler()

    def rec(name: str, level: int) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, "m", None, None)

    old = os.environ.get(ENV_VERBOSE)
    try:
        os.environ[ENV_VERBOSE] = "0"
        assert h.filter(rec("training.engine", logging.WARNING))
        assert not h.filter(rec("vllm.engine", logging.WARNING)) and not h.filter(rec("prefect", logging.INFO))
        assert h.filter(rec("vllm.engine", logging.ERROR))
        os.environ[ENV_VERBOSE] = "1"
        assert h.filter(rec("prefect.flow_runs", logging.INFO)) and not h.filter(rec("x", logging.DEBUG))
    finally:
        if old is None:
            os.environ.pop(ENV_VERBOSE, None)
        else:
            os.environ[ENV_VERBOSE] = old


def test_captioner_training_is_quiet(tmp_path):
    """No transformers tqdm bars ("Writing model shards") and no per-step loss lines on the terminal: the
    bar is the project's, the loss lines go to the log."""
    from tests.captioner_settings import MICRO_CAPTIONER

    sets = [x for k, v in {**MICRO_CAPTIONER, "cache_dir": str(tmp_path / "cache")}.items() for x in ("--set", f"{k}={v}")]
    proc = _run(["captioner", "train", "--out", str(tmp_path / "cap"), *sets], tmp_path, tmp_path / "prefect-home")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "captioner:" in proc.stdout and "step 1/3" not in proc.stdout + proc.stderr
    for noise in ("Writing model shards", "Loading weights", "Traceback"):
        assert noise not in proc.stderr, f"{noise!r} on the terminal:\n{proc.stderr[-2000:]}"


def test_library_reports_of_user_errors_stay_in_the_log():
    """Prefect logs a task's ConfigError with its traceback before the CLI prints the one-line error: in quiet
    mode that record goes to the log file only; a real bug's traceback still reaches the terminal."""
    import sys as _sys

    from flows.cli.logs import ENV_VERBOSE, QuietConsoleHandler
    from pedes_core.errors import ConfigError, InputError

    h = QuietConsoleHandler()

    def rec(name: str, exc: BaseException | None, msg: str = "Task run failed with exception") -> logging.LogRecord:
        info = None
        if exc is not None:
            try:
                raise exc
            except BaseException:  # noqa: BLE001
                info = _sys.exc_info()
        return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, None, info)

    old = os.environ.get(ENV_VERBOSE)
    try:
        os.environ[ENV_VERBOSE] = "0"
        assert not h.filter(rec("prefect.task_runs", ConfigError("recipe.x: bad")))
        assert not h.filter(rec("prefect.flow_runs", None, "Finished in state Failed('InputError: no such file')"))
        assert h.filter(rec("prefect.task_runs", RuntimeError("a bug")))
        assert h.filter(rec("prefect.task_runs", InputError("x"))) is False
        assert h.filter(rec("training.engine", ConfigError("ours")))  # our own records are never hidden
        os.environ[ENV_VERBOSE] = "1"
        assert h.filter(rec("prefect.task_runs", ConfigError("recipe.x: bad")))
    finally:
        if old is None:
            os.environ.pop(ENV_VERBOSE, None)
        else:
            os.environ[ENV_VERBOSE] = old


_HF_PROBE = """
import sys
from flows.cli.logs import attach_run_dir, setup_logging
setup_logging(int(sys.argv[1]))
attach_run_dir(sys.argv[2])
import transformers
from transformers.utils import logging as hf_logging
hf_logging.get_logger("transformers.modeling_utils").warning("hf-probe-warning")
hf_logging.get_logger("transformers.modeling_utils").info("hf-probe-info")
"""


def test_transformers_warnings_are_filed_not_dropped(tmp_path):
    """transformers' own stderr handler is replaced by the root's: quiet mode files its warnings in the run
    log and keeps them off the terminal; ``-v`` shows its INFO records, once each."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PEDES_", "TRANSFORMERS_"))}
    env["PYTHONPATH"] = str(REPO)

    def run(verbose: int, folder: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", _HF_PROBE, str(verbose), str(folder)], env=env,
                              capture_output=True, text=True, timeout=300)

    quiet = run(0, tmp_path / "quiet")
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "hf-probe" not in quiet.stderr
    log = (tmp_path / "quiet" / "pedes.log").read_text()
    assert "hf-probe-warning" in log and "transformers.modeling_utils" in log
    assert "hf-probe-info" not in log  # transformers' INFO chatter (model configs) stays out by default

    loud = run(1, tmp_path / "loud")
    assert loud.returncode == 0, loud.stderr[-2000:]
    assert loud.stderr.count("hf-probe-warning") == 1 and loud.stderr.count("hf-probe-info") == 1


def test_a_user_error_inside_a_flow_task_is_one_line(tmp_path):
    """A task that fails on bad input (a captions file that does not exist): Prefect's "task run failed"
    traceback and its failed-state lines stay out of the terminal, which shows the one-line error."""
    cfg = tmp_path / "mine.yaml"
    missing = tmp_path / "no-such-captions.json"
    cfg.write_text(yaml.safe_dump({"captions": str(missing), "out": str(tmp_path / "templates" / "mined.json"),
                                   "runner": {"kind": "thread"}}))
    proc = _run(["flow", "run", "mine-templates", "-c", str(cfg)], tmp_path, tmp_path / "prefect-home")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "Finished in state" not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert any(str(missing.name) in ln for ln in lines), proc.stderr[-2000:]
    assert len(lines) <= 2, proc.stderr[-2000:]
