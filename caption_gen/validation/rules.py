"""Caption validation rules (DESIGN.md §3 "Validation before a caption is accepted").

One small function per rule. Each returns the list of named reasons it finds (empty list: the rule
passes). Reasons are stable short names written into corpus rows and rejects:

``empty``, ``refusal``, ``meta_talk``, ``unfilled_slot``, ``repetition``, ``too_short``, ``too_long``,
``incomplete_sentence``, ``ungrammatical``, ``junk``, ``low_coverage``, ``leakage:clothing``, ``leakage:identity``.
"""

from __future__ import annotations

import re
from collections import Counter

from caption_gen.validation.lexicon import (
    CLOTHING_LEAK_WORDS,
    GROUPS,
    IDENTITY_LEAK_WORDS,
    find_terms,
    tokens,
    unknown_words,
)

_REFUSAL_RE = re.compile(
    r"\b(i'?m|i am) (sorry|afraid|unable|not able)\b"
    r"|\bi (apologi[sz]e|cannot|can't|can not|won't|am not able to)\b"
    r"|\bas an ai\b|\b(ai|language) model\b"
    r"|\b(unable|not able) to (help|assist|provide|describe|identify|comply)\b"
    r"|\bno (person|people|one|human) (is |are )?(visible|in the image|present)\b",
    re.IGNORECASE,
)
#: Chat-assistant preambles: always meta talk.
_PREAMBLE_RE = re.compile(
    r"^\s*(sure|certainly|of course|okay|ok|absolutely)\b[\s,!.:]"
    r"|^\s*here(?: is|'s| are)\b"
    r"|\b(the|this) (template|instruction|prompt)\b"
    r"|\bi (can|could) see\b",
    re.IGNORECASE,
)
#: Talk about the picture instead of the person; meta talk only when no person is described.
_IMAGE_TALK_RE = re.compile(
    r"\b(the|this) (image|picture|photo|photograph|scene|frame)\b", re.IGNORECASE)
_PERSON_RE = re.compile(
    r"\b(person|pedestrian|individual|someone|man|men|woman|women|boy|girl|lady|gentleman|guy|child|kid|"
    r"he|she|they|people)\b", re.IGNORECASE)
_SLOT_RE = re.compile(r"\[[^\[\]]{1,60}\]")
_SENTENCE_END_RE = re.compile(r"[.!?][\"'”’)\]]*$")
_WORD_TOKEN_RE = re.compile(r"^(?:[A-Za-z]+(?:[-'’][A-Za-z]+)*|\d+(?:[.,:]\d+)?(?:s|st|nd|rd|th|%)?)$")
_STRIP = ".,;:!?\"'“”‘’()[]{}*"
_VOWELS = set("aeiouyAEIOUY")


def words(text: str) -> list[str]:
    """Whitespace-separated words (what the length rule counts)."""
    return text.split()


def check_empty(text: str) -> list[str]:
    """``empty``: no text, or only whitespace/punctuation."""
    return [] if text and text.strip(_STRIP + " \t\r\n") else ["empty"]


def check_refusal(text: str) -> list[str]:
    """``refusal``: the model declines or talks about itself ("I'm sorry", "As an AI", "I cannot")."""
    return ["refusal"] if _REFUSAL_RE.search(text) else []


def check_meta_talk(text: str) -> list[str]:
    """``meta_talk``: an assistant preamble ("Sure, here is…"), talk about the template/instruction, or
    talk about the image ("The image shows a street …") without any person described."""
    if _PREAMBLE_RE.search(text):
        return ["meta_talk"]
    if _IMAGE_TALK_RE.search(text) and not _PERSON_RE.search(text):
        return ["meta_talk"]
    return []


def check_unfilled_slot(text: str) -> list[str]:
    """``unfilled_slot``: a TDE slot such as ``[hair description]`` was copied instead of filled."""
    return ["unfilled_slot"] if _SLOT_RE.search(text) else []


def repeated_ngram_share(text: str, n: int) -> float:
    """Share of word n-grams that repeat an earlier n-gram: ``1 - unique / total`` (0 for short texts)."""
    toks = tokens(text)
    grams = [tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)]
    if len(grams) < 2:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def longest_token_run(text: str) -> int:
    """Length of the longest run of the same word repeated back to back."""
    best = run = 0
    prev = None
    for tok in tokens(text):
        run = run + 1 if tok == prev else 1
        prev = tok
        best = max(best, run)
    return best


def check_repetition(text: str, *, ngram: int, max_share: float, max_run: int) -> list[str]:
    """``repetition``: degenerate loops — repeated n-gram share above ``max_share`` or one word repeated
    more than ``max_run`` times in a row."""
    if repeated_ngram_share(text, ngram) > max_share or longest_token_run(text) > max_run:
        return ["repetition"]
    return []


def check_length(text: str, *, min_words: int, max_words: int) -> list[str]:
    """``too_short`` / ``too_long``: word count outside ``[min_words, max_words]``."""
    n = len(words(text))
    if n < min_words:
        return ["too_short"]
    if n > max_words:
        return ["too_long"]
    return []


def check_complete_sentence(text: str, *, finish_reason: str | None = None) -> list[str]:
    """``incomplete_sentence``: the text does not start like a sentence (its first letter or digit is a
    lower-case letter), does not end with ``.``, ``!`` or ``?`` (closing quotes or brackets allowed),
    or the backend stopped on the token limit (``finish_reason == "length"``)."""
    first = next((c for c in text if c.isalnum()), "")
    if finish_reason == "length" or first.islower() or not _SENTENCE_END_RE.search(text.rstrip()):
        return ["incomplete_sentence"]
    return []


_FUNCTION_WORDS = frozenset({"a", "an", "the", "and", "or", "with", "of", "in", "on", "is", "are", "to", "at",
                             "by", "for", "from", "his", "her", "their", "its", "who", "while"})
_ARTICLES = frozenset({"a", "an", "the"})
_GRAMMAR_TOKEN_RE = re.compile(r"[A-Za-z]+|[0-9]+|[.!?;:]")


def grammar_violations(text: str) -> list[str]:
    """Cheap sentence-sanity checks that catch word salad (seed 000 §3.3 "syntax checks"):

    * a sentence (after ``.``/``!``/``?``) that starts with a lower-case word;
    * a capitalized function word in mid-sentence ("jeans The brown");
    * the same word twice in a row ("striped striped", "a a");
    * an article followed by a function word ("a and", "the is");
    * a sentence ending in a function word ("wears a.", "and with.").

    Returns one short description per violation. Choice: only these rules — no parser — so list-style
    captions ("Hair: long. Shoes: boots.") stay valid.
    """
    toks = _GRAMMAR_TOKEN_RE.findall(text)
    out: list[str] = []
    for i, tok in enumerate(toks):
        prev = toks[i - 1] if i else None
        low = tok.lower()
        if tok in ".!?" and prev is not None and prev.lower() in _FUNCTION_WORDS:
            out.append(f"ends with {prev!r}")
        if not tok.isalpha():
            continue
        if prev in (".", "!", "?") and tok[0].islower():
            out.append(f"sentence starts with {tok!r}")
        elif prev is not None and prev.isalpha() and tok[0].isupper() and low in _FUNCTION_WORDS:
            out.append(f"capitalized {tok!r} mid-sentence")
        if prev is not None and prev.lower() == low:
            out.append(f"doubled {tok!r}")
        elif prev is not None and prev.lower() in _ARTICLES and low in _FUNCTION_WORDS:
            out.append(f"{prev!r} before {tok!r}")
    return out


def check_grammar(text: str, *, max_errors: int) -> list[str]:
    """``ungrammatical``: more than ``max_errors`` sentence-sanity violations (:func:`grammar_violations`)."""
    return ["ungrammatical"] if len(grammar_violations(text)) > max_errors else []


def is_word_token(token: str, max_chars: int) -> bool:
    """A language token: letters (with inner hyphens/apostrophes) containing a vowel, or a number;
    at most ``max_chars`` long. Choice: ASCII letters only — the corpus language is English."""
    core = token.strip(_STRIP)
    if not core:
        return True  # pure punctuation such as "-" or "&" is neither word nor junk
    if len(core) > max_chars or not _WORD_TOKEN_RE.match(core):
        return False
    return core[0].isdigit() or len(core) < 4 or bool(_VOWELS & set(core))


def non_alpha_share(text: str, max_chars: int) -> float:
    """Share of whitespace tokens that are not language tokens (see :func:`is_word_token`)."""
    toks = [t for t in text.split() if t.strip(_STRIP)]
    if not toks:
        return 0.0
    return sum(not is_word_token(t, max_chars) for t in toks) / len(toks)


def unknown_word_share(text: str) -> float:
    """Share of alphabetic word tokens that are not English words (see :func:`lexicon.unknown_words`)."""
    toks = [t for t in tokens(text) if len(t) > 1 and t.isalpha()]
    return len(unknown_words(toks)) / len(toks) if toks else 0.0


def check_junk(text: str, *, max_share: float, max_chars: int, max_unknown_share: float = 1.0) -> list[str]:
    """``junk``: non-language output. Either the share of non-language tokens (symbols, mixed
    letters/digits, vowel-less strings, over-long tokens) is above ``max_share``, or the share of words
    missing from an English dictionary (glued sub-word pieces of a random-weight model) is above
    ``max_unknown_share``."""
    if non_alpha_share(text, max_chars) > max_share or unknown_word_share(text) > max_unknown_share:
        return ["junk"]
    return []


def coverage(text: str, groups: list[str]) -> tuple[list[str], float]:
    """Attribute groups the text mentions and the covered share of ``groups``."""
    toks = tokens(text)
    covered = [g for g in groups if find_terms(toks, GROUPS[g])]
    return covered, (len(covered) / len(groups) if groups else 1.0)


def check_coverage(share: float, *, min_coverage: float) -> list[str]:
    """``low_coverage``: fewer attribute groups covered than ``min_coverage`` (a share of the groups)."""
    return ["low_coverage"] if share + 1e-9 < min_coverage else []


def leakage_terms(text: str, kind: str) -> list[str]:
    """Words of the other half of the dual prompts (seed 000 §3.3) found in an identity/clothing text."""
    lexicon = {"identity": CLOTHING_LEAK_WORDS, "clothing": IDENTITY_LEAK_WORDS}.get(kind)
    return find_terms(tokens(text), lexicon) if lexicon else []


def check_leakage(text: str, kind: str, *, max_words: int = 0) -> list[str]:
    """``leakage:clothing`` (apparel words in an identity text) / ``leakage:identity`` (gender, age, build,
    hair or skin words in a clothing text) when more than ``max_words`` such words occur."""
    found = leakage_terms(text, kind)
    if len(found) <= max_words:
        return []
    return ["leakage:clothing" if kind == "identity" else "leakage:identity"]


def reason_counts(reasons: list[list[str]]) -> dict[str, int]:
    """How often each reason occurs over many validation results (for progress/summary lines)."""
    return dict(Counter(r for rs in reasons for r in rs))
