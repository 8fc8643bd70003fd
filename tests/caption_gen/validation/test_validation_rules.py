"""Every caption validation rule on hand-written good and bad examples (issue 3 §4), then the whole
``validate_caption`` on realistic captions of each kind."""

from __future__ import annotations

import pytest

from caption_gen.validation import ValidationPolicy, rules, validate_caption
from pedes_core.errors import ConfigError

GOOD_STATIC = ("A young woman with long black hair wears a red jacket over a white shirt, blue jeans and white "
               "sneakers. She carries a black backpack on her shoulders.")
GOOD_IDENTITY = "A young woman of slim build with long straight black hair and fair skin, walking upright."
GOOD_CLOTHING = "A red jacket over a white shirt, blue denim jeans, white sneakers and a black backpack."


@pytest.mark.parametrize("text, bad", [
    ("", True), ("   \n\t", True), (" ... ", True), ("A man.", False),
])
def test_empty(text, bad):
    assert rules.check_empty(text) == (["empty"] if bad else [])


@pytest.mark.parametrize("text", [
    "I'm sorry, but I can't help with identifying people in images.",
    "As an AI language model, I cannot describe this person.",
    "I am unable to describe the individual in this picture.",
    "No person is visible in the image.",
])
def test_refusal_bad(text):
    assert rules.check_refusal(text) == ["refusal"]


@pytest.mark.parametrize("text", [GOOD_STATIC, "The man is sorry-looking and walks with a cane.",
                                  "A woman in a jacket; she cannot be seen from the front."])
def test_refusal_good(text):
    assert rules.check_refusal(text) == []


@pytest.mark.parametrize("text", [
    "Sure, here is a description of the pedestrian: a man in a black coat.",
    "Here's the caption: a woman wearing a red dress.",
    "The image shows a busy street with cars and buildings.",
    "Following the template, a man wears a coat.",
])
def test_meta_talk_bad(text):
    assert rules.check_meta_talk(text) == ["meta_talk"]


@pytest.mark.parametrize("text", [GOOD_STATIC, "The image shows a man in a grey suit carrying a briefcase."])
def test_meta_talk_good(text):
    """Mentioning the image is fine when a person is described."""
    assert rules.check_meta_talk(text) == []


def test_unfilled_slot():
    assert rules.check_unfilled_slot("A [person/woman/man] wearing [clothing description].") == ["unfilled_slot"]
    assert rules.check_unfilled_slot(GOOD_STATIC) == []


def test_repetition():
    loop = "A man wearing a black coat, " * 6 + "and shoes."
    assert rules.repeated_ngram_share(loop, 3) > 0.5
    assert rules.check_repetition(loop, ngram=3, max_share=0.3, max_run=4) == ["repetition"]
    stutter = "A woman with very very very very very long hair."
    assert rules.longest_token_run(stutter) == 5
    assert rules.check_repetition(stutter, ngram=3, max_share=0.3, max_run=4) == ["repetition"]
    assert rules.check_repetition(GOOD_STATIC, ngram=3, max_share=0.3, max_run=4) == []
    assert rules.repeated_ngram_share("two words", 3) == 0.0


@pytest.mark.parametrize("n, expect", [(3, ["too_short"]), (8, []), (20, []), (21, ["too_long"])])
def test_length(n, expect):
    assert rules.check_length(" ".join(["word"] * n), min_words=8, max_words=20) == expect


@pytest.mark.parametrize("text, finish, bad", [
    ("A man wears a black coat and", None, True),              # cut mid-sentence
    ("a man wears a black coat.", None, True),                 # does not start like a sentence
    ("A man wears a black coat.", "length", True),             # token limit hit
    ("A man wears a black coat.", "stop", False),
    ('She wears a shirt that says "hello."', None, False),     # closing quote after the period
    ("Is he wearing a coat?", None, False),
])
def test_complete_sentence(text, finish, bad):
    assert rules.check_complete_sentence(text, finish_reason=finish) == (["incomplete_sentence"] if bad else [])


def test_grammar_violations_name_what_is_wrong():
    salad = "A man wears jeans The brown a and coat with."
    found = rules.grammar_violations(salad)
    assert "capitalized 'The' mid-sentence" in found
    assert "'a' before 'and'" in found
    assert "ends with 'with'" in found
    assert rules.check_grammar(salad, max_errors=1) == ["ungrammatical"]
    assert rules.grammar_violations(GOOD_STATIC) == []
    assert rules.grammar_violations("Hair: long. Shoes: boots.") == []  # list style stays valid
    assert rules.grammar_violations("A woman. she wears a coat.") == ["sentence starts with 'she'"]
    assert rules.check_grammar("A woman. she wears a coat.", max_errors=1) == []  # one tolerated


@pytest.mark.parametrize("text, bad", [
    ("x7#q @@ ## zzkq 9x9a !!@ wwrr a man.", True),           # symbols, mixed letters/digits, vowel-less
    ("blorfing snarquet plimber wuzzit frobnar a man.", True),  # glued sub-word pieces: unknown words
    (GOOD_STATIC, False),
    ("A man, about 30 years old, in a 2-piece suit.", False),
])
def test_junk(text, bad):
    assert rules.check_junk(text, max_share=0.2, max_chars=24, max_unknown_share=0.3) == (["junk"] if bad else [])


def test_junk_overlong_token():
    assert not rules.is_word_token("a" * 30, max_chars=24)
    assert rules.is_word_token("t-shirt", max_chars=24) and rules.is_word_token("1990s", max_chars=24)


def test_coverage_groups_and_threshold():
    covered, share = rules.coverage(GOOD_STATIC, ["clothing", "shoes", "hair", "gender", "belongings"])
    assert covered == ["clothing", "shoes", "hair", "gender", "belongings"] and share == 1.0
    covered, share = rules.coverage("A person stands near a wall in the sun.",
                                    ["clothing", "shoes", "hair", "gender", "belongings"])
    assert covered == [] and share == 0.0
    assert rules.check_coverage(0.2, min_coverage=0.4) == ["low_coverage"]
    assert rules.check_coverage(0.4, min_coverage=0.4) == []


def test_leakage_both_directions():
    assert rules.check_leakage("A tall young man with short hair wearing a blue jacket.", "identity") == \
        ["leakage:clothing"]
    assert rules.check_leakage(GOOD_IDENTITY, "identity") == []
    assert rules.check_leakage("A young blonde woman in a red jacket and jeans.", "clothing") == \
        ["leakage:identity"]
    assert rules.check_leakage("She wears a red jacket and jeans.", "clothing") == []  # pronoun is not leakage
    assert rules.check_leakage(GOOD_STATIC, "static") == []  # only identity/clothing texts
    assert rules.check_leakage("A man in a blue jacket.", "identity", max_words=1) == []


def test_reason_counts():
    assert rules.reason_counts([["junk", "too_short"], ["junk"], []]) == {"junk": 2, "too_short": 1}


@pytest.mark.parametrize("text, kind", [(GOOD_STATIC, "static"), (GOOD_STATIC, "dynamic"),
                                        (GOOD_IDENTITY, "identity"), (GOOD_CLOTHING, "clothing")])
def test_validate_accepts_good_captions_and_stores_coverage(text, kind):
    res = validate_caption(text, kind)
    assert res.passed and res.reasons == [], res
    assert res.coverage is not None and res.coverage >= 0.4
    assert res.as_row() == {"passed": True, "reasons": [], "covered": res.covered, "coverage": res.coverage}


def test_validate_collects_every_reason():
    res = validate_caption("sure, here is [hair description] and", "static", finish_reason="length")
    assert not res.passed
    for reason in ("meta_talk", "unfilled_slot", "too_short", "incomplete_sentence", "low_coverage"):
        assert reason in res.reasons, res.reasons
    assert validate_caption("  ", "clothing").reasons == ["empty"]
    assert "leakage:clothing" in validate_caption("A young man with short black hair in a blue jacket and jeans.",
                                                  "identity").reasons


def test_policy_overrides_per_kind_and_unknowns():
    pol = ValidationPolicy(min_words=30, kinds={"identity": {"min_words": 3, "check_leakage": False}})
    assert "too_short" in validate_caption(GOOD_STATIC, "static", pol).reasons
    assert validate_caption("A young man with short black hair in a blue jacket.", "identity", pol).passed
    with pytest.raises(ConfigError, match="unknown caption kind 'poem'"):
        validate_caption(GOOD_STATIC, "poem")
    with pytest.raises(ValueError, match="unknown caption kind"):
        ValidationPolicy(kinds={"poem": {}})
    with pytest.raises(ValueError, match="unknown attribute group"):
        ValidationPolicy(kinds={"static": {"coverage_groups": ["hats"]}})
