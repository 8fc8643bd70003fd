"""The banks the prompt-diversity tools write load in the captioning engine (seed 002 §3.1, seed 000 §3.3):
``pedes styles build`` → ``bank.json`` drives the ``styled`` kind, ``pedes templates mine`` → a mined
template bank drives the ``dynamic`` kind."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from caption_gen.instructions.bank import InstructionSet
from caption_gen.styles.bank import load_style_bank
from flows.cli import app


def test_style_bank_drives_styled_instructions(built_default: Path):
    bank = {s.style_id: s.prompt for s in load_style_bank(built_default).styles}
    iset = InstructionSet.load(style_bank=built_default / "bank.json")
    drawn = [iset.render("static", image_id=f"imgs/{i}.jpg", seed=0, styled=True) for i in range(40)]
    assert {d.style_id for d in drawn} <= set(bank) and len({d.style_id for d in drawn}) > 1
    for d in drawn:
        assert d.text.endswith(bank[d.style_id]) and d.instruction_id.endswith(f"+style:{d.style_id}")


def test_mined_template_bank_drives_dynamic_instructions(tmp_path: Path, styled_text_file: Path):
    out = tmp_path / "mined.json"
    res = CliRunner().invoke(app, ["templates", "mine", "--captions", str(styled_text_file), "--out", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    mined = {t["template_id"]: t["text"] for t in json.loads(out.read_text())["templates"]}
    assert mined
    iset = InstructionSet.load(templates=out)
    drawn = [iset.render("dynamic", image_id=f"imgs/{i}.jpg", seed=3) for i in range(20)]
    assert all(d.template_id in mined and mined[d.template_id] in d.text for d in drawn)
