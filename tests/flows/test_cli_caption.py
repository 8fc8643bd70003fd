"""``pedes caption`` end to end in real subprocesses: stub models (acceptance), resume, exit 2 on bad config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def pedes(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **(env or {})}, timeout=300)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    from caption_gen.synth import render_dataset

    out = tmp_path_factory.mktemp("cli-caption")
    render_dataset(out, identities=3, images_per_identity=3, seed=2, size=(96, 48))
    return out / "imgs"


def test_config_two_models_four_kinds_validates_and_rerun_does_nothing(images, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({
        "images": str(images), "out": "corpus", "shard_size": 4,
        "kinds": ["static", "dynamic", "identity", "clothing"],
        "models": [{"name": "mllm-a", "backend": "stub"},
                   {"name": "mllm-b", "backend": "stub", "api_key_env": "PEDES_CLI_TEST_KEY"}],
    }))
    env = {"PEDES_CLI_TEST_KEY": "sk-never-written-anywhere"}
    res = pedes("caption", "--config", str(cfg), "--no-progress", env=env)
    assert res.returncode == 0, res.stderr
    assert "3 shard(s) written" in res.stderr and "72 captions accepted" in res.stderr
    corpus = tmp_path / "corpus"  # relative 'out' resolves against the config file's folder
    val = pedes("corpus", "validate", str(corpus))
    assert val.returncode == 0, val.stdout + val.stderr
    resolved = (tmp_path / "corpus.config.resolved.yaml").read_text()
    assert "PEDES_CLI_TEST_KEY" in resolved
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert b"sk-never-written-anywhere" not in f.read_bytes(), f
    again = pedes("caption", "--config", str(cfg), "--no-progress", env=env)
    assert again.returncode == 0 and "0 shard(s) written, 3 already done" in again.stderr


def test_flags_quick_start(images, tmp_path):
    res = pedes("caption", "--images", str(images), "--out", str(tmp_path / "c"), "--backend", "stub",
                "--kinds", "identity,clothing", "--shard-size", "5", "--set", "retry.max_attempts=2")
    assert res.returncode == 0, res.stderr
    assert "18 captions accepted" in res.stderr
    assert "max_attempts: 2" in (tmp_path / "c.config.resolved.yaml").read_text()


@pytest.mark.parametrize("args,message", [
    (["--model", "/nonexistent/model-dir"], "model path does not exist"),
    (["--backend", "stub", "--kinds", "static,poetry"], "unknown caption kind"),
    (["--backend", "stub", "--set", "templates=BAD"], "unknown slot"),
    (["--backend", "openai", "--model", "m"], "api_base"),
])
def test_bad_config_exits_2_before_generation(images, tmp_path, args, message):
    (tmp_path / "BAD").write_text("A [person/woman/man] in [spaceship description].\n")
    args = [a.replace("BAD", str(tmp_path / "BAD")) for a in args]
    res = pedes("caption", "--images", str(images), "--out", str(tmp_path / "c"), *args)
    assert res.returncode == 2, res.stdout + res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "c" / "shards").exists()


def test_relative_paths_in_the_file_resolve_against_the_file_flags_against_cwd(images, tmp_path):
    """One rule for relative paths (pedes_core.configuration): file values → the file's folder (the image
    source included), command-line values → the current directory."""
    conf = tmp_path / "conf"
    conf.mkdir()
    shutil.copytree(images, tmp_path / "imgs")
    (conf / "run.yaml").write_text(yaml.safe_dump({"images": "../imgs", "out": "../corpus", "kinds": ["static"],
                                                   "models": [{"backend": "stub"}]}))
    elsewhere = tmp_path / "a" / "b"  # "../imgs" from here would be a/imgs: only the file's folder finds them
    elsewhere.mkdir(parents=True)
    env = {"PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", "caption", "--config",
                          str(conf / "run.yaml"), "--no-progress"], capture_output=True, text=True, cwd=elsewhere,
                         env={**os.environ, **env}, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "9 captions accepted" in res.stderr and (tmp_path / "corpus" / "corpus.json").is_file()
    (elsewhere / "few").mkdir()
    shutil.copy(sorted((tmp_path / "imgs").rglob("*.jpg"))[0], elsewhere / "few" / "one.jpg")
    flag = subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", "caption", "--config",
                           str(conf / "run.yaml"), "--images", "few", "--out", "c2", "--no-progress"],
                          capture_output=True, text=True, cwd=elsewhere, env={**os.environ, **env}, timeout=300)
    assert flag.returncode == 0, flag.stderr
    assert "1 captions accepted" in flag.stderr and (elsewhere / "c2" / "corpus.json").is_file()
