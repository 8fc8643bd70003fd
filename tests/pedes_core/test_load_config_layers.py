"""One loader, four layers: defaults < file < command-line flags < ``--set``; one path rule per layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from pedes_core.configuration import ConfigModel, ConfigPath, load_config
from pedes_core.errors import ConfigError


class Demo(ConfigModel):
    name: str
    steps: int = 1
    data: ConfigPath | None = None


def test_layers_and_path_rules(tmp_path, monkeypatch):
    cfg_dir = tmp_path / "cfg"
    cfg_dir.mkdir()
    f = cfg_dir / "x.yaml"
    f.write_text("name: file\nsteps: 2\ndata: rel\n")
    monkeypatch.chdir(tmp_path)
    got = load_config(Demo, f, defaults={"name": "default", "steps": 9})
    assert (got.name, got.steps, got.data) == ("file", 2, cfg_dir / "rel")  # the file beats defaults
    got = load_config(Demo, f, flags={"steps": 5, "name": None, "data": str(Path("cli").absolute())})
    assert (got.name, got.steps, got.data) == ("file", 5, tmp_path / "cli")  # flags beat the file; None = not given
    got = load_config(Demo, f, ["steps=7", "data=over"], flags={"steps": 5})
    assert (got.steps, got.data) == (7, tmp_path / "over")  # --set beats flags, resolved against the cwd
    got = load_config(Demo, None, flags={"name": "only-flags"})
    assert got.name == "only-flags"
    with pytest.raises(ConfigError, match=r"x.yaml \+ command-line flags"):
        load_config(Demo, f, flags={"steps": "many"})
