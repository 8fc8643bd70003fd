"""The CLI explains itself (docs/cli.md): ``--version``, ``-c`` for every ``--config``, help texts that cite
papers as "paper" (so "seed" means only the RNG seed), ``flow list`` with descriptions."""

from __future__ import annotations

import re

import pytest
import typer

from flows.cli import app, main


def _commands(cmd, path: str = "pedes"):
    yield path, cmd
    if hasattr(cmd, "list_commands"):  # a group (typer vendors its own click classes)
        ctx = type(cmd).context_class(cmd)
        for name in cmd.list_commands(ctx):
            yield from _commands(cmd.get_command(ctx, name), f"{path} {name}")


@pytest.fixture(scope="module")
def tree():
    return list(_commands(typer.main.get_command(app)))


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code in (None, 0)
    assert capsys.readouterr().out.strip() == f"pedes-forge {version('pedes-forge')}"


def test_every_config_option_has_the_short_flag(tree):
    missing = [path for path, cmd in tree for p in cmd.params
               if p.param_type_name == "option" and "--config" in p.opts and "-c" not in p.opts]
    assert not missing, missing
    assert sum(1 for _, cmd in tree for p in cmd.params if "--config" in getattr(p, "opts", ())) >= 5


def test_help_texts_cite_papers_not_seeds(tree):
    seed_cite = re.compile(r"\b[Ss]eed \d{3}\b")
    bad = []
    for path, cmd in tree:
        texts = [cmd.help or "", cmd.short_help or ""] + [getattr(p, "help", None) or "" for p in cmd.params]
        bad += [f"{path}: {t}" for t in texts if seed_cite.search(t)]
    assert not bad, bad


def test_recipe_descriptions_cite_papers():
    from flows.cli.recipes import catalog, cite

    assert cite("IRRA-style fine-tuning (seed 002 Table 4)") == "IRRA-style fine-tuning (LUPerson-MLLM paper Table 4)"
    assert not any(re.search(r"\bseed \d{3}", d) for _, _, d, _ in catalog())


def test_flow_list_describes_each_flow(capsys):
    from flows.registry import FLOWS

    with pytest.raises(SystemExit) as info:
        main(["flow", "list"])
    assert info.value.code in (None, 0)
    out = capsys.readouterr().out
    for name, entry in FLOWS.items():
        assert re.search(rf"^{re.escape(name)}\s+{re.escape(entry.summary)}$", out, re.M), name
    for name in ("build-corpus", "style-clusters", "mine-templates", "train"):
        assert f"pedes flow run {name} -c configs/flows/{name.replace('-', '_')}.yaml" in out


def test_flow_run_dry_run_prints_the_plan_and_runs_nothing(tmp_path, synth_small, stub_config_writer, capsys):
    n = len(sorted((synth_small / "imgs").rglob("*.jpg")))
    out = tmp_path / "corpus"
    cfg = stub_config_writer(tmp_path / "bc.yaml", synth_small / "imgs", out)
    with pytest.raises(SystemExit) as info:
        main(["flow", "run", "build-corpus", "-c", str(cfg), "--dry-run"])
    assert info.value.code in (None, 0)
    text = capsys.readouterr().out
    shards = -(-n // 6)
    assert f"images: {n} found, 0 already in the corpus, {n} to caption" in text
    assert f"shards: {shards} in all, 0 done, {shards} pending (shard size 6)" in text
    assert f"requests: {2 * n} = images × kinds × models (2 kinds × 1 models: static/stub-a, identity/stub-a)" in text
    assert not out.exists()
