from caption_gen.styles.lexicons import count_content_words
from caption_gen.styles.neutralize import RuleNeutralizer, content_survival, make_neutralizer


def test_rule_neutralizer_replaces_content_keeps_structure():
    text = "A woman with long black hair wears a red T-shirt, blue jeans and 2 white sneakers; she carries a backpack."
    out = RuleNeutralizer().neutralize([text])[0]
    assert out == ("A [person] with long [color] hair wears a [color] [garment], [color] [garment] and [number] "
                   "[color] [footwear]; she carries a [belongings].")
    assert count_content_words(out) == 0
    # structure kept: same punctuation sequence and same word order of the non-content words
    assert [c for c in text if c in ",.;"] == [c for c in out if c in ",.;"]


def test_rule_neutralizer_plurals_and_multiword():
    out = RuleNeutralizer().neutralize(["He has sunglasses, a baseball cap and shoulder bags."])[0]
    assert out == "He has [accessory], a [accessory] and [belongings]."


def test_content_survival_measures_leftover_content():
    orig = ["red jacket and blue jeans", "a white shirt"]
    assert content_survival(orig, RuleNeutralizer().neutralize(orig)) == 0.0
    assert content_survival(orig, orig) == 1.0
    half = ["[color] jacket and [color] jeans", "a white shirt"]  # 2 of 6 content words left in first... check
    assert 0.0 < content_survival(orig, half) < 1.0
    assert content_survival(["no content here"], ["no content here"]) == 0.0


def test_identity_neutralizer_and_unknown_kind():
    import pytest

    from pedes_core.errors import ConfigError

    assert make_neutralizer("none").neutralize(["red coat"]) == ["red coat"]
    with pytest.raises(ConfigError, match="unknown neutralizer"):
        make_neutralizer("magic")
    with pytest.raises(ConfigError, match="needs a captioning backend"):
        make_neutralizer("llm")
