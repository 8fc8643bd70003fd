import json

import pytest

from caption_gen.styles.bank import StyleEntry, load_style_bank, write_style_bank
from pedes_core.errors import InputError


def test_bank_roundtrip_schema_and_version(tmp_path):
    styles = [StyleEntry("style-00", "Use a terse style.", 10, 0.5, "statistics"),
              StyleEntry("style-01", "Write long sentences.", 10, 0.5, "llm")]
    path = write_style_bank(styles, tmp_path, meta={"algorithm": "dbscan"})
    data = json.loads(path.read_text())
    assert isinstance(data, list) and len(data) == 2
    for entry in data:
        assert {"style_id", "prompt", "size", "bank_version", "prompt_sha256"} <= set(entry)
    meta = json.loads((tmp_path / "bank.meta.json").read_text())
    assert meta["bank_version"] == data[0]["bank_version"] and meta["algorithm"] == "dbscan"
    bank = load_style_bank(tmp_path)
    assert [s.prompt for s in bank.styles] == ["Use a terse style.", "Write long sentences."]
    assert bank.version == data[0]["bank_version"]
    changed = write_style_bank([StyleEntry("style-00", "Use another style.", 1)], tmp_path / "b")
    assert load_style_bank(changed).version != bank.version


def test_plain_list_of_prompts_loads(tmp_path):
    p = tmp_path / "styles.json"
    p.write_text(json.dumps(["Use a very detailed, descriptive style.", "Be brief."]))
    bank = load_style_bank(p)
    assert [s.style_id for s in bank.styles] == ["style-00", "style-01"]
    p.write_text(json.dumps({"styles": [{"prompt": "Be brief.", "style_id": "x"}]}))
    assert load_style_bank(p).by_id()["x"].prompt == "Be brief."


@pytest.mark.parametrize("content,match", [
    ("[]", "non-empty"), ("{\"a\": 1}", "non-empty"), ("[\"\"]", "entry 0: empty prompt"),
    ("[{\"style_id\": \"a\"}]", "entry 0: field 'prompt'"), ("[3]", "entry 0: expected"),
    ("[\"a\", {\"prompt\": \"b\", \"style_id\": \"style-00\"}]", "duplicate style_id"), ("{", "not valid JSON"),
])
def test_bad_banks_name_the_problem(tmp_path, content, match):
    p = tmp_path / "bank.json"
    p.write_text(content)
    with pytest.raises(InputError, match=match):
        load_style_bank(p)
