import json

import pytest

from caption_gen.instructions.slots import parse_template
from caption_gen.templates_mining import (
    MinedTemplate,
    dedup_templates,
    mine_templates,
    normalize_template,
    rule_template,
    write_template_bank,
)


def test_rule_template_slots_and_collapses_runs():
    t = rule_template("A young woman with long brown hair wears a white blouse, black trousers and red shoes, "
                      "carrying a black handbag and sunglasses.")
    assert t == ("A young [person/woman/man] with [hair description] wears [clothing description] and "
                 "[footwear description], carrying [belongings description] and [accessory description].")
    assert parse_template(t).slots == ("person/woman/man", "hair description", "clothing description",
                                       "footwear description", "belongings description", "accessory description")


def test_rule_template_without_content_is_none():
    assert rule_template("It is a sunny day.") is None


def test_dedup_exact_and_near():
    c = [MinedTemplate("a", "A [person/woman/man] wearing [clothing description].", ["x"]),
         MinedTemplate("b", "a [person/woman/man] wearing [clothing description]", ["x"]),  # exact after normalization
         MinedTemplate("c", "A [person/woman/man] is wearing [clothing description].", ["x"]),  # near duplicate
         MinedTemplate("d", "You will see [footwear description] first, then [hair description].", ["x"])]
    assert normalize_template(c[0].text) == normalize_template(c[1].text)
    out, counts = dedup_templates(c, threshold=0.8)
    assert counts == {"candidates": 4, "after_exact": 3, "after_near": 2}
    assert out[0].support == 3 and out[0].text == c[0].text
    out2, counts2 = dedup_templates(c, threshold=0.999)
    assert counts2["after_near"] == 3


def test_mine_and_write_bank(tmp_path, ):
    caps = ["A man in a blue jacket and black jeans with white sneakers.",
            "A woman in a red jacket and grey jeans with black sneakers.",
            "Nothing to slot here.",
            "The girl has short hair. She carries an umbrella."]
    res = mine_templates(caps)
    assert res.stats["rejected"] == 1 and res.rejects[0]["reason"] == "rules:no slot found"
    assert res.templates[0].support == 2 and len(res.templates) == 2
    path = write_template_bank(res, tmp_path / "bank.json", source="test")
    doc = json.loads(path.read_text())
    assert doc["format"] == "pedes-template-bank" and doc["version"].startswith("tb1-")
    for t in doc["templates"]:
        assert parse_template(t["text"]).template_id == t["template_id"]
    assert (tmp_path / "bank.rejects.jsonl").read_text().count("\n") == 1
    txt = write_template_bank(res, tmp_path / "bank.txt")
    assert txt.read_text().splitlines() == [t.text for t in res.templates]


@pytest.mark.parametrize("n", [0, 1])
def test_dedup_small_inputs(n):
    c = [MinedTemplate("a", "A [person/woman/man].", ["x"])][:n]
    assert len(dedup_templates(c)[0]) == n


@pytest.mark.parametrize("caption,expected", [
    ("A woman with her hair in a ponytail wears a red coat.",
     "A [person/woman/man] with [hair description] wears [clothing description]."),
    ("The lady, her long hair tied in a braid, carries a bag.",
     "The [person/woman/man], [hair description], carries [belongings description]."),
    ("The woman she is wearing a black jacket.", "The [person/woman/man] is wearing [clothing description]."),
    ("She is a young girl, she wears a blue dress and white shoes.",
     "A young [person/woman/man] wears [clothing description] and [footwear description]."),
    ("Her woman friend wears jeans.", "The [person/woman/man] friend wears [clothing description]."),
])
def test_mined_templates_have_no_pronoun_at_person_slot_and_no_repeated_slot(caption, expected):
    from caption_gen.templates_mining import clean_template, template_defects

    raw = rule_template(caption)
    assert template_defects(raw)  # what the rules alone produce ...
    res = mine_templates([caption])
    assert [t.text for t in res.templates] == [expected]  # ... and what mining keeps
    assert template_defects(expected) == [] and clean_template(raw) == expected
    assert res.stats["repaired"] == 1


def test_template_defects_and_clean_keep_legitimate_repeats():
    from caption_gen.templates_mining import clean_template, template_defects

    two_sentences = "The [person/woman/man] wears [clothing description]. The [person/woman/man] has [hair description]."
    assert template_defects(two_sentences) == [] and clean_template(two_sentences) == two_sentences
    assert template_defects("A [person/woman/man] with [hair description] in [hair description].") == [
        "repeated slot [hair description]"]
    assert template_defects("His [person/woman/man] walks.") == ["pronoun next to the [person/woman/man] slot"]


def test_llm_templates_are_cleaned_or_rejected():
    class Stub:
        def generate(self, requests):
            from dataclasses import dataclass

            @dataclass
            class R:
                text: str
                num_tokens: int = 5
                finish_reason: str = "stop"
                error: str | None = None

            return [R("Template: With [hair description] in [hair description], her [person/woman/man] "
                      "wears [clothing description].") for _ in requests]

    res = mine_templates(["A woman with hair in a bun wears a coat."], backend=Stub())
    assert [t.text for t in res.templates] == [
        "With [hair description], the [person/woman/man] wears [clothing description]."]
    assert res.templates[0].source == "llm"


def test_progress_follows_the_captions_and_the_cli_takes_source():
    from typer.testing import CliRunner

    from caption_gen.templates_mining import mine_templates
    from flows.cli import app

    captions = ["A man in a red jacket and black trousers."] * 130
    calls: list[tuple[int, int]] = []
    mine_templates(captions, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(64, 130), (128, 130), (130, 130)]
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "c.txt"
        src.write_text("\n".join(captions) + "\n")
        for flag in ("--source", "--captions"):  # the shared name, and the old one
            res = CliRunner().invoke(app, ["templates", "mine", flag, str(src), "--out", str(Path(tmp) / f"{flag[2:]}.json")])
            assert res.exit_code == 0, res.output
