"""Outputs where the user is (docs/outputs.md): a recipe of the checkout run from elsewhere writes under the
current directory and leaves the checkout unchanged; the recipes ship inside the package (``pedes recipes``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from pedes_core.configuration import ConfigModel, OutputPath, load_config

REPO = Path(__file__).resolve().parents[2]
#: what a run writes (checkpoints, results, configs, logs, event files, Parquet); source edits of other work are not
RUN_SUFFIXES = (".pt", ".json", ".yaml", ".md", ".png", ".parquet", ".log", ".npy", ".bin")


def pedes(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _checkout_files() -> set[str]:
    """Files under the checkout that git does not track (ignored ones included), without caches and the venv."""
    ignored = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "--ignored"],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout.splitlines()
    untracked = subprocess.run(["git", "ls-files", "--others", "--exclude-standard"], cwd=REPO, capture_output=True,
                               text=True, check=True).stdout.splitlines()
    skip = (".venv/", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", ".import_linter_cache")
    return {p for p in [*ignored, *untracked] if not any(s in p for s in skip)}


class _Out(ConfigModel):
    out: OutputPath


def test_output_paths_in_a_file_resolve_against_the_current_directory(tmp_path, monkeypatch):
    cfg_dir = tmp_path / "elsewhere"
    cfg_dir.mkdir()
    (cfg_dir / "c.yaml").write_text("out: runs\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(_Out, cfg_dir / "c.yaml").out == tmp_path / "runs"
    assert load_config(_Out, cfg_dir / "c.yaml", ["out=x/y"]).out == tmp_path / "x" / "y"


def test_recipes_resolve_output_dir_against_the_current_directory(tmp_path, monkeypatch):
    from training.config import load_recipe

    monkeypatch.chdir(tmp_path)
    for recipe in sorted((REPO / "configs").glob("*.yaml")):
        if "method" not in (yaml.safe_load(recipe.read_text()) or {}):  # demo, deployments, repro configs
            continue
        assert load_recipe(recipe).engine.output_dir == tmp_path / "runs", recipe.name


def test_smoke_run_of_a_checkout_recipe_leaves_the_checkout_unchanged(tmp_path):
    before = _checkout_files()
    run = pedes("train", "--config", str(REPO / "configs" / "finetune_irra.yaml"), "--smoke", cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert list((tmp_path / "runs" / "smoke").glob("finetune_irra-smoke-*/results.json"))
    new = {p for p in _checkout_files() - before if p.endswith(RUN_SUFFIXES) or "tfevents" in p}
    assert not new, f"the run wrote into the checkout: {sorted(new)}"


def test_recipes_ship_with_the_package(tmp_path):
    from flows.cli.recipes import catalog, recipes_root

    root = recipes_root()
    assert root.is_relative_to(REPO / "flows") or "site-packages" in str(root)
    names = {n for n, *_ in catalog()}
    assert {"pretrain_nam", "finetune_irra", "bdam", "flows/train"} <= names
    listed = pedes("recipes", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "finetune_irra" in listed.stdout and "training recipe" in listed.stdout
    shown = pedes("recipes", "show", "finetune_irra", cwd=tmp_path)
    assert shown.returncode == 0 and shown.stdout == (REPO / "configs" / "finetune_irra.yaml").read_text()
    copied = pedes("recipes", "copy", "pretrain_nam", cwd=tmp_path)
    assert copied.returncode == 0 and (tmp_path / "pretrain_nam.yaml").read_text() == (
        REPO / "configs" / "pretrain_nam.yaml").read_text()
    again = pedes("recipes", "copy", "pretrain_nam", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    unknown = pedes("recipes", "show", "nope", cwd=tmp_path)
    assert unknown.returncode == 2 and "finetune_irra" in unknown.stderr


def test_the_wheel_carries_the_recipes(tmp_path):
    """setuptools follows the flows/recipes link when it builds the wheel."""
    import shutil
    import zipfile

    src = tmp_path / "src"  # a copy: an in-tree build would leave build/ in the checkout
    shutil.copytree(REPO, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", "tests", "__pycache__", "*.egg-info", "build", "demo-output", "runs", "docs", "benchmarks"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                           str(tmp_path), str(src)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"the wheel does not build: {proc.stderr[-500:]}"
    (wheel,) = tmp_path.glob("pedes_forge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"flows/recipes/finetune_irra.yaml", "flows/recipes/flows/train.yaml"} <= names
