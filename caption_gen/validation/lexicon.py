"""Attribute lexicons for caption validation (DESIGN.md §3; seed 000 §3.3 "validation for attribute coverage").

A lexicon-based detector: a caption *covers* an attribute group when one of the group's words or phrases
occurs in it. Matching is on lower-cased ASCII word tokens (hyphens and apostrophes split words, so
"t-shirt" → "t shirt", "woman's" → "woman s"); a word also matches after removing a plural ``s``/``es``.

Choices (the seeds give no lexicon):

* gender pronouns (he/she/his/her) count for *coverage* of gender, but not as identity *leakage* in a
  clothing text — MLLMs routinely write "She wears …" and the pronoun carries no appearance detail;
* ambiguous words are left out of the leakage sets: "short"/"long"/"slim"/"thin"/"straight" (short sleeves,
  slim-fit, thin stripes, straight-leg) and "top"/"watch"/"tie"/"tank" (top of the head, to watch).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

GENDER_NOUNS = frozenset({
    "man", "men", "woman", "women", "male", "female", "boy", "girl", "gentleman", "gentlemen", "lady", "ladies",
    "guy", "gal", "masculine", "feminine",
})
GENDER_PRONOUNS = frozenset({"he", "she", "his", "her", "him", "hers", "herself", "himself"})
AGE = frozenset({
    "young", "younger", "old", "older", "elderly", "teen", "teenage", "teenager", "adult", "child", "children",
    "kid", "senior", "aged", "adolescent", "youth", "toddler", "twenties", "thirties", "forties", "fifties",
    "middle aged",
})
BUILD = frozenset({
    "build", "stocky", "muscular", "chubby", "overweight", "heavyset", "slender", "petite", "athletic", "plump",
    "skinny", "tall", "height", "lean", "broad shouldered", "medium build", "slim", "thin", "short",
})
HAIR = frozenset({
    "hair", "hairstyle", "haircut", "haired", "ponytail", "ponytails", "bun", "braid", "braided", "bangs",
    "bald", "blonde", "blond", "brunette", "curly", "wavy", "dreadlocks", "afro", "buzz cut", "crew cut",
    "shoulder length", "pigtails", "mohawk", "beard", "bearded", "mustache", "moustache",
})
SKIN = frozenset({"skin", "skinned", "complexion", "skin tone"})
POSTURE = frozenset({
    "standing", "walking", "sitting", "running", "facing", "posture", "upright", "striding", "pose", "posing",
    "leaning", "stands", "walks", "sits", "turned", "profile", "back view", "crouching",
})
CLOTHING = frozenset({
    "shirt", "tshirt", "tee", "blouse", "top", "jacket", "coat", "sweater", "hoodie", "sweatshirt", "cardigan",
    "vest", "dress", "skirt", "pants", "trousers", "jeans", "shorts", "leggings", "suit", "uniform", "blazer",
    "jumper", "polo", "tank top", "overalls", "jumpsuit", "outfit", "clothes", "clothing", "garment", "sleeve",
    "sleeves", "sleeved", "sleeveless", "collar", "parka", "windbreaker", "tracksuit", "trench", "denim",
    "attire", "tunic", "robe", "pullover", "raincoat", "tights", "joggers", "sweatpants", "hood", "hooded",
    "apparel", "capris", "cargo",
})
SHOES = frozenset({
    "shoe", "shoes", "sneaker", "sneakers", "boot", "boots", "sandal", "sandals", "heels", "high heels",
    "slippers", "loafers", "trainers", "footwear", "flats", "flip flops", "socks", "clogs", "moccasins",
})
BELONGINGS = frozenset({
    "bag", "backpack", "handbag", "purse", "suitcase", "luggage", "umbrella", "phone", "cellphone",
    "smartphone", "bottle", "briefcase", "satchel", "tote", "wallet", "basket", "stroller", "bicycle", "bike",
    "shoulder bag", "rucksack", "box", "package", "camera", "laptop", "book", "folder", "cup", "scooter",
    "belongings", "carrying", "cart",
})
ACCESSORIES = frozenset({
    "hat", "cap", "glasses", "sunglasses", "eyeglasses", "scarf", "watch", "mask", "gloves", "belt",
    "necklace", "earrings", "bracelet", "headband", "helmet", "tie", "beanie", "headphones", "earphones",
    "jewelry", "accessory", "accessories",
})
COLORS = frozenset({
    "black", "white", "red", "blue", "green", "yellow", "gray", "grey", "brown", "pink", "purple", "orange",
    "beige", "navy", "khaki", "maroon", "tan", "cream", "olive", "teal", "violet", "silver", "gold", "golden",
    "colored", "coloured", "colorful", "dark", "light", "pale", "bright", "turquoise", "burgundy",
})
PATTERNS = frozenset({
    "striped", "stripes", "stripe", "plaid", "checkered", "checked", "floral", "dotted", "polka", "patterned",
    "pattern", "printed", "print", "logo", "solid", "camouflage", "graphic", "lettering", "spotted", "tartan",
})

#: Attribute groups a caption can cover.
GROUPS: dict[str, frozenset[str]] = {
    "clothing": CLOTHING,
    "shoes": SHOES,
    "hair": HAIR,
    "gender": GENDER_NOUNS | GENDER_PRONOUNS,
    "belongings": BELONGINGS,
    "accessories": ACCESSORIES,
    "age": AGE,
    "build": BUILD,
    "skin": SKIN,
    "posture": POSTURE,
    "color": COLORS,
    "pattern": PATTERNS,
}

#: Words that must not appear in an identity text (apparel, shoes, carried and worn items).
CLOTHING_LEAK_WORDS = (CLOTHING | SHOES | BELONGINGS | ACCESSORIES) - {
    "top", "watch", "tie", "carrying", "hood", "cargo", "box", "book", "cup", "belongings",
}
#: Words that must not appear in a clothing text (biological / identity traits).
IDENTITY_LEAK_WORDS = (GENDER_NOUNS | AGE | BUILD | HAIR | SKIN) - {
    "short", "slim", "thin", "aged", "build", "height", "lean", "light", "curly", "wavy", "bun", "profile",
}

_WORD_RE = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    """Lower-cased ASCII word tokens (hyphens/apostrophes split words)."""
    return _WORD_RE.findall(text.lower())


def _singular(word: str) -> tuple[str, ...]:
    forms = [word]
    if len(word) > 3 and word.endswith("es"):
        forms.append(word[:-2])
    if len(word) > 2 and word.endswith("s"):
        forms.append(word[:-1])
    return tuple(forms)


def find_terms(text_tokens: list[str], lexicon: Iterable[str]) -> list[str]:
    """Lexicon entries (single words and multi-word phrases) found in a token list, in lexicon order."""
    words = set()
    for tok in text_tokens:
        words.update(_singular(tok))
    joined = " " + " ".join(text_tokens) + " "
    found = []
    for term in sorted(lexicon):
        if (" " in term and f" {term} " in joined) or term in words:
            found.append(term)
    return found


def covered_groups(text: str, groups: Iterable[str]) -> list[str]:
    """Attribute groups (of :data:`GROUPS`) that ``text`` mentions, in the given order."""
    toks = tokens(text)
    return [g for g in groups if find_terms(toks, GROUPS[g])]


@lru_cache(maxsize=1)
def _spellchecker():
    from spellchecker import SpellChecker

    return SpellChecker(language="en", distance=1)


@lru_cache(maxsize=1)
def _lexicon_words() -> frozenset[str]:
    out: set[str] = set()
    for group in GROUPS.values():
        for term in group:
            out.update(term.split())
    return frozenset(out | {"tshirt", "hoodie", "crossbody", "sneaker", "beanie"})


def unknown_words(word_tokens: list[str]) -> list[str]:
    """Alphabetic tokens (2+ letters) that are neither English words (pyspellchecker's English frequency
    dictionary, bundled offline) nor lexicon words — e.g. glued sub-word pieces from a random model."""
    cands = [t for t in word_tokens if len(t) > 1 and t.isalpha()]
    lex = _lexicon_words()
    rest = [t for t in cands if t not in lex and not any(f in lex for f in _singular(t))]
    if not rest:
        return []
    known = _spellchecker().known(rest)
    return [t for t in rest if t not in known]
