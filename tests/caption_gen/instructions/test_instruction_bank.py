"""Instruction kinds and the TDE template bank (seed 002 §3.1, seed 000 §3.3)."""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path

import pytest
import yaml

from caption_gen.instructions.bank import (
    KINDS,
    InstructionSet,
    check_template_bank,
    load_style_prompts,
    load_template_bank,
)
from caption_gen.instructions.slots import SLOT_TYPES, parse_template, template_id_for
from pedes_core.errors import ConfigError

STATIC_PAPER = ("Write a description about the overall appearance of the person in the image, including the "
                "attributes: clothing, shoes, hairstyle, gender and belongings. If any attribute is not visible, "
                "you can ignore it. Do not imagine any contents that are not in the image.")


@pytest.fixture(scope="module")
def iset() -> InstructionSet:
    return InstructionSet.load()


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_bank_has_40_distinct_valid_templates_with_varied_structure(iset):
    assert len(iset.templates) >= 40
    assert len({t.template_id for t in iset.templates}) == len(iset.templates)
    for t in iset.templates:
        assert parse_template(t.text).slots == t.slots
        assert t.template_id == template_id_for(t.text)
    first_slots = {t.text.split("[", 1)[1].split("]", 1)[0] for t in iset.templates if "[" in t.text}
    # Templates start with different attributes, and some are two sentences.
    assert {"hair description", "belongings description", "clothing description"} <= {
        t.slots[0] for t in iset.templates} | first_slots
    assert sum(t.text.count(". ") >= 1 for t in iset.templates) >= 8
    used = {s for t in iset.templates for s in t.slots}
    assert used == set(SLOT_TYPES)


def test_static_is_the_paper_instruction(iset):
    ins = iset.render("static", image_id="img/0001.jpg", seed=0)
    assert ins.text == STATIC_PAPER
    assert ins.instruction_id == "static-v1"
    assert ins.sha256 == hashlib.sha256(STATIC_PAPER.encode()).hexdigest()
    assert ins.template_id is None and ins.style_id is None
    assert ins.messages() == [{"role": "user", "content": STATIC_PAPER}]


def test_dynamic_inserts_one_template_deterministically(iset):
    a = iset.render("dynamic", image_id="img/0001.jpg", seed=7)
    b = iset.render("dynamic", image_id="img/0001.jpg", seed=7)
    assert a == b
    tpl = {t.template_id: t for t in iset.templates}[a.template_id]
    assert f"in a style similar to the template: '{tpl.text}'" in a.text
    assert "{template}" not in a.text
    assert a.sha256 == hashlib.sha256(a.text.encode()).hexdigest()
    # Different images / seeds draw different templates (not a constant).
    drawn = {iset.render("dynamic", image_id=f"img/{i:04d}.jpg", seed=7).template_id for i in range(60)}
    assert len(drawn) >= 20
    other_seed = [iset.render("dynamic", image_id=f"img/{i:04d}.jpg", seed=8).template_id for i in range(60)]
    assert other_seed != [iset.render("dynamic", image_id=f"img/{i:04d}.jpg", seed=7).template_id for i in range(60)]


def test_two_models_draw_their_own_template_for_the_same_image(iset):
    """Seed 002 §3.1: the template is drawn per MLLM call, so Qwen and Shikra get independent templates."""
    images = [f"img/{i:04d}.jpg" for i in range(60)]
    qwen = [iset.render("dynamic", image_id=im, seed=7, model="qwen").template_id for im in images]
    shikra = [iset.render("dynamic", image_id=im, seed=7, model="shikra").template_id for im in images]
    same = sum(a == b for a, b in zip(qwen, shikra, strict=True))
    assert same <= 8  # independent draws: ~60/len(bank) ≈ 1.3 coincidences expected, not 60
    assert qwen == [iset.render("dynamic", image_id=im, seed=7, model="qwen").template_id for im in images]
    # without a model the draw keeps the earlier (seed, image, kind) key: existing corpora rerun unchanged
    no_model = [iset.render("dynamic", image_id=im, seed=7).template_id for im in images]
    assert no_model == [random.Random(f"7:{im}:dynamic").choice(iset.templates).template_id for im in images]


def test_forced_template_id(iset):
    tid = iset.templates[3].template_id
    assert iset.render("dynamic", image_id="x", seed=0, template_id=tid).template_id == tid
    with pytest.raises(ConfigError, match="tde-nope"):
        iset.render("dynamic", image_id="x", seed=0, template_id="tde-nope")


def test_identity_and_clothing_prompts_have_length_and_sampling(iset):
    ident = iset.render("identity", image_id="x", seed=0)
    cloth = iset.render("clothing", image_id="x", seed=0)
    assert "{max_words}" not in ident.text and "at most 50 words" in ident.text
    assert "Do not mention any clothing" in ident.text
    assert "Do not mention gender" in cloth.text
    for ins in (ident, cloth):
        assert set(ins.sampling) == {"temperature", "top_p", "max_tokens"}
        assert 0 < ins.sampling["temperature"] <= 1.0
    assert iset.kinds == KINDS


def test_unknown_kind_is_config_error(iset):
    with pytest.raises(ConfigError, match="unknown caption kind 'bogus'"):
        iset.render("bogus", image_id="x", seed=0)
    with pytest.raises(ConfigError):
        iset.check_kinds(["static", "styled-nonsense"])


def test_styled_with_project_bank_and_plain_list(tmp_path, iset):
    bank = _write(tmp_path / "bank.json", json.dumps([
        {"style_id": "style-07", "prompt": "Use a very detailed, descriptive style."},
        {"style_id": "style-09", "prompt": "Write one short sentence."}]))
    styled = InstructionSet.load(style_bank=bank)
    a = styled.render("identity", image_id="p/1.jpg", seed=1, styled=True)
    assert a == styled.render("identity", image_id="p/1.jpg", seed=1, styled=True)
    assert a.style_id in {"style-07", "style-09"}
    assert a.instruction_id == f"identity-v1+style:{a.style_id}"
    prompt = {"style-07": "Use a very detailed, descriptive style.", "style-09": "Write one short sentence."}[a.style_id]
    assert a.text.endswith(prompt)
    assert a.text.startswith(iset.render("identity", image_id="p/1.jpg", seed=1).text)
    assert a.sha256 != iset.render("identity", image_id="p/1.jpg", seed=1).sha256
    styles = {styled.render("static", image_id=f"p/{i}.jpg", seed=1, styled=True).style_id for i in range(30)}
    assert styles == {"style-07", "style-09"}

    plain = _write(tmp_path / "plain.json", json.dumps(["Use a terse style.", "Use a poetic style."]))
    prompts = load_style_prompts(plain)
    assert [p.style_id for p in prompts] == ["style-00", "style-01"]
    d = InstructionSet.load(style_bank=plain).render("dynamic", image_id="q", seed=2, styled=True)
    assert d.template_id is not None and d.style_id in {"style-00", "style-01"}
    # Styling draws after the template: the template is the same as the unstyled draw.
    assert d.template_id == iset.render("dynamic", image_id="q", seed=2).template_id


def test_styled_without_bank_is_config_error(iset):
    with pytest.raises(ConfigError, match="style bank"):
        iset.render("static", image_id="x", seed=0, styled=True)


def test_bad_style_bank_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="bank.json"):
        InstructionSet.load(style_bank=_write(tmp_path / "bank.json", "not json"))


@pytest.mark.parametrize("bad, reason", [
    ("A [person/woman/man] in [hat description].", "unknown slot"),
    ("A [person/woman/man in a coat.", "unbalanced"),
    ("A person in a coat.", "no slot"),
])
def test_bad_template_is_config_error_naming_file_and_template(tmp_path, bad, reason):
    path = _write(tmp_path / "bank.yaml", yaml.safe_dump({"version": "1", "templates": [
        "A [person/woman/man] with [hair description].", bad]}))
    with pytest.raises(ConfigError) as exc:
        InstructionSet.load(templates=path)
    msg = str(exc.value)
    assert str(path) in msg and reason in msg and bad[:20] in msg


def test_template_bank_formats(tmp_path, caplog):
    texts = ["A [person/woman/man] with [hair description].", "Wearing [clothing description], a [person/woman/man]."]
    txt = _write(tmp_path / "bank.txt", "# comment\n" + "\n".join(texts) + "\n\n")
    js = _write(tmp_path / "mined.json", json.dumps({"format": "pedes-template-bank", "templates": [
        {"template_id": "tde-a", "text": texts[0]}, {"template_id": "tde-b", "text": texts[1]}]}))
    assert [t.text for t in load_template_bank(txt)] == texts
    assert [t.template_id for t in load_template_bank(js)] == ["tde-a", "tde-b"]
    dup = _write(tmp_path / "dup.txt", texts[0] + "\n" + texts[0] + "\n")
    good, problems = check_template_bank(dup)
    assert len(good) == 1 and "duplicate" in problems[0].reason
    # the engine's loader drops an exact duplicate with a warning (as `templates check` does) ...
    with caplog.at_level(logging.WARNING, logger="caption_gen.instructions.bank"):
        assert [t.text for t in load_template_bank(dup)] == [texts[0]]
    assert "1 exact duplicate template(s) dropped" in caplog.text
    # ... but an id reused for a different text is still a bad bank
    clash = _write(tmp_path / "clash.json", json.dumps({"templates": [
        {"template_id": "tde-a", "text": texts[0]}, {"template_id": "tde-a", "text": texts[1]}]}))
    with pytest.raises(ConfigError, match="clash.json.*duplicate"):
        load_template_bank(clash)
    with pytest.raises(ConfigError, match="empty.yaml"):
        load_template_bank(_write(tmp_path / "empty.yaml", "version: 1\ntemplates: []\n"))
    with pytest.raises(ConfigError, match="missing.txt"):
        load_template_bank(tmp_path / "missing.txt")


def test_bad_instructions_file(tmp_path):
    src = yaml.safe_load(Path(InstructionSet.load().sources["instructions"]).read_text())
    src["kinds"]["selfie"] = dict(src["kinds"]["static"], id="selfie-v1")
    with pytest.raises(ConfigError, match="unknown instruction kind.*selfie"):
        InstructionSet.load(instructions=_write(tmp_path / "i.yaml", yaml.safe_dump(src)))
    src = yaml.safe_load(Path(InstructionSet.load().sources["instructions"]).read_text())
    src["kinds"]["dynamic"]["text"] = "No placeholder here."
    with pytest.raises(ConfigError, match="kinds.dynamic.*template"):
        InstructionSet.load(instructions=_write(tmp_path / "i2.yaml", yaml.safe_dump(src)))
    with pytest.raises(ConfigError, match="i3.yaml"):
        InstructionSet.load(instructions=_write(tmp_path / "i3.yaml", "kinds: [unclosed"))


def test_version_bump_changes_id_and_hash(tmp_path):
    src = yaml.safe_load(Path(InstructionSet.load().sources["instructions"]).read_text())
    src["kinds"]["static"]["id"] = "static-v2"
    src["kinds"]["static"]["text"] = STATIC_PAPER + " Answer in English."
    alt = InstructionSet.load(instructions=_write(tmp_path / "i.yaml", yaml.safe_dump(src)))
    a = alt.render("static", image_id="x", seed=0)
    assert a.instruction_id == "static-v2"
    assert a.sha256 != InstructionSet.load().render("static", image_id="x", seed=0).sha256
