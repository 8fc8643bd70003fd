"""Content lexicons for rule-based neutralization and content-survival scoring (seed 000 §3.3).

Seed 000 §3.3 has an MLLM "generalize and substitute entity attributes to emphasize expression style
rather than content". The offline fallback needs to know which words carry *content*: the lexicons
below group pedestrian-description vocabulary by attribute. Each group maps to one placeholder token
(``[color]``, ``[garment]`` ...), so a neutralized text keeps its structure, order and length while
every concrete value is gone. Multi-word entries ("t shirt", "baseball cap") are matched before
single words. Lexicons are data, not logic: extend them freely.
"""

from __future__ import annotations

import re
from functools import lru_cache

#: attribute group -> words/phrases (lower case). Plural forms are matched by an optional "s"/"es".
LEXICONS: dict[str, tuple[str, ...]] = {
    "color": (
        "black", "white", "red", "blue", "green", "yellow", "orange", "purple", "pink", "brown", "grey",
        "gray", "beige", "navy", "maroon", "tan", "khaki", "violet", "cyan", "teal", "olive", "golden",
        "gold", "silver", "cream", "burgundy", "turquoise", "dark", "light", "bright", "pale", "multicolored",
        "colorful", "striped", "plaid", "checkered", "floral", "dotted", "polka", "camouflage", "patterned",
    ),
    "garment": (
        "t shirt", "t-shirt", "tee shirt", "tank top", "crop top", "polo shirt", "dress shirt", "sweat pants",
        "track suit", "down jacket", "shirt", "blouse", "top", "sweater", "hoodie", "jacket", "coat", "vest",
        "cardigan", "blazer", "suit", "uniform", "dress", "skirt", "pants", "trousers", "jeans", "shorts",
        "leggings", "capris", "overalls", "jumpsuit", "tracksuit", "sweatshirt", "pullover", "parka",
        "windbreaker", "raincoat", "robe", "gown", "tights", "stockings", "socks", "outfit", "clothes",
        "clothing", "sleeves", "sleeve", "collar",
    ),
    "material": (
        "denim", "leather", "cotton", "wool", "woolen", "silk", "linen", "nylon", "polyester", "fleece",
        "knit", "knitted", "velvet", "suede", "lace", "fur", "canvas", "corduroy", "satin", "plastic",
    ),
    "hair": (
        "ponytail", "pony tail", "bun", "braid", "braids", "bangs", "fringe", "curly", "wavy", "straight",
        "bald", "shaved", "crew cut", "buzz cut", "shoulder length", "shoulder-length", "long hair",
        "short hair", "medium hair", "blond", "blonde", "brunette", "haired", "hairstyle",
    ),
    "footwear": (
        "sneakers", "sneaker", "shoes", "shoe", "boots", "boot", "sandals", "sandal", "heels", "high heels",
        "slippers", "loafers", "flats", "trainers", "footwear", "flip flops",
    ),
    "accessory": (
        "baseball cap", "sunglasses", "glasses", "spectacles", "hat", "cap", "beanie", "scarf", "mask",
        "face mask", "watch", "bracelet", "necklace", "earrings", "belt", "gloves", "headband", "helmet",
        "tie", "hood",
    ),
    "belongings": (
        "shoulder bag", "hand bag", "handbag", "backpack", "bag", "purse", "satchel", "suitcase", "luggage",
        "umbrella", "phone", "cellphone", "cell phone", "bottle", "book", "folder", "box", "stroller",
        "bicycle", "bike", "scooter", "tote", "briefcase", "basket", "package",
    ),
    # the subject noun: gender and age are content, not style
    "person": (
        "gentleman", "pedestrian", "teenager", "person", "woman", "women", "lady", "ladies", "girl", "boy", "man",
        "men", "guy", "male", "female", "child", "kid", "people",
    ),
    "number": (
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twenty", "thirty",
        "forty", "fifty",
    ),
}

#: group -> placeholder token written by the rule neutralizer.
PLACEHOLDERS: dict[str, str] = {group: f"[{group}]" for group in LEXICONS}

#: Words that mark the head region / identity (for head-to-toe ordering detection).
HEAD_WORDS: tuple[str, ...] = ("hair", "head", "face", "[hair]", "ponytail", "bangs", "hat", "cap", "glasses")
#: Words that mark body clothing (for clothing-first ordering detection).
BODY_WORDS: tuple[str, ...] = ("[garment]", "shirt", "jacket", "coat", "dress", "pants", "jeans", "skirt", "top")
#: Words that mark the feet region.
FEET_WORDS: tuple[str, ...] = ("[footwear]", "shoes", "sneakers", "boots", "feet", "foot")
#: Second-person markers (a text that addresses the reader).
SECOND_PERSON: tuple[str, ...] = ("you", "your", "you'll", "you're", "yours")


@lru_cache(maxsize=1)
def lexicon_pattern() -> re.Pattern[str]:
    """One alternation over every lexicon phrase, longest first, whole words, optional plural."""
    phrases = sorted({p for words in LEXICONS.values() for p in words}, key=len, reverse=True)
    body = "|".join(re.escape(p).replace(r"\ ", r"[\s-]+").replace(r"\-", r"[\s-]*") for p in phrases)
    return re.compile(rf"(?<![\w\[])(?:{body})(?:e?s)?(?![\w\]])", re.IGNORECASE)


@lru_cache(maxsize=1)
def phrase_to_group() -> dict[str, str]:
    """Normalized phrase -> group; the first group listing a phrase wins."""
    out: dict[str, str] = {}
    for group, words in LEXICONS.items():
        for w in words:
            out.setdefault(_norm(w), group)
    return out


def _norm(phrase: str) -> str:
    return re.sub(r"[\s-]+", " ", phrase.lower()).strip()


def group_of(match_text: str) -> str:
    """Attribute group of a lexicon match (handles plurals)."""
    table = phrase_to_group()
    norm = _norm(match_text)
    for cand in (norm, norm[:-1], norm[:-2]):
        if cand in table:
            return table[cand]
    raise KeyError(match_text)


def count_content_words(text: str) -> int:
    """Number of lexicon (content) phrases in ``text``."""
    return sum(1 for _ in lexicon_pattern().finditer(text))
