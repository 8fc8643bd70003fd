"""Ground-truth texts of synthetic pedestrians, written from their attributes.

* :func:`full_caption` — a CUHK-PEDES-style description (appearance + clothing + belongings) in one of
  :data:`PATTERNS` sentence patterns, so a model cannot learn one fixed word order;
* :func:`identity_text` — identity traits only (gender, build, height, skin, hair; no apparel), the
  analogue of seed 000's identity description;
* :func:`clothing_text` — clothing only (top, bottom, shoes, bag; no biological traits), seed 000's
  clothing description.

Only attributes the renderer actually draws are named, so every word is grounded in pixels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from caption_gen.synth.attributes import Identity, Outfit


def _pronoun(identity: Identity) -> tuple[str, str]:
    return ("he", "his") if identity.gender == "man" else ("she", "her")


def hair_phrase(identity: Identity) -> str:
    """``"long black hair"``, ``"black hair tied in a ponytail"``, ``"a shaved head"``."""
    color = identity.hair_color
    return {
        "short": f"short {color} hair",
        "long": f"long {color} hair",
        "ponytail": f"{color} hair tied in a ponytail",
        "bun": f"{color} hair in a bun",
        "bald": "a shaved head",
    }[identity.hair_style]


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def top_phrase(outfit: Outfit) -> str:
    return _article(f"{outfit.top_color} {outfit.top_type}")


def bottom_phrase(outfit: Outfit) -> str:
    noun = f"{outfit.bottom_color} {outfit.bottom_type}"
    return noun if outfit.bottom_type in ("trousers", "shorts") else _article(noun)


def shoes_phrase(outfit: Outfit) -> str:
    return f"{outfit.shoes_color} shoes"


def bag_phrase(outfit: Outfit) -> str | None:
    return None if outfit.bag == "none" else _article(f"{outfit.bag_color} {outfit.bag}")


def _subject(identity: Identity) -> str:
    return identity.gender


def _p0(i: Identity, o: Outfit) -> str:
    he, _ = _pronoun(i)
    bag = bag_phrase(o)
    tail = f" and carries {bag}" if bag else ""
    return (f"A {_subject(i)} with {hair_phrase(i)} is wearing {top_phrase(o)} and {bottom_phrase(o)}. "
            f"{he.capitalize()} has {shoes_phrase(o)}{tail}.")


def _p1(i: Identity, o: Outfit) -> str:
    he, _ = _pronoun(i)
    bag = bag_phrase(o)
    tail = f" {he.capitalize()} is carrying {bag}." if bag else ""
    return (f"The {_subject(i)} has {hair_phrase(i)}. {he.capitalize()} wears {top_phrase(o)}, "
            f"{bottom_phrase(o)} and {shoes_phrase(o)}.{tail}")


def _hair_predicate(identity: Identity) -> str:
    """``"His hair is short and black."`` style sentence about the hair."""
    _, his = _pronoun(identity)
    color = identity.hair_color
    return {
        "short": f"{his.capitalize()} hair is short and {color}.",
        "long": f"{his.capitalize()} hair is long and {color}.",
        "ponytail": f"{his.capitalize()} {color} hair is tied in a ponytail.",
        "bun": f"{his.capitalize()} {color} hair is tied in a bun.",
        "bald": f"{his.capitalize()} head is shaved.",
    }[identity.hair_style]


def _p2(i: Identity, o: Outfit) -> str:
    bag = bag_phrase(o)
    tail = f", with {bag}" if bag else ""
    return (f"This {_subject(i)} is dressed in {top_phrase(o)} with {bottom_phrase(o)} and {shoes_phrase(o)}{tail}. "
            f"{_hair_predicate(i)}")


def _p3(i: Identity, o: Outfit) -> str:
    bag = bag_phrase(o)
    tail = f" The {_subject(i)} holds {bag}." if bag else ""
    return (f"{_article(i.build + ' ' + _subject(i)).capitalize()} walking, wearing {top_phrase(o)}, {bottom_phrase(o)} and "
            f"{shoes_phrase(o)}, with {hair_phrase(i)}.{tail}")


def _p4(i: Identity, o: Outfit) -> str:
    he, _ = _pronoun(i)
    bag = bag_phrase(o)
    tail = f" and {bag}" if bag else ""
    return (f"{_article(o.top_color + ' ' + o.top_type).capitalize()} and {bottom_phrase(o)} are worn by a "
            f"{_subject(i)} with {hair_phrase(i)}. {he.capitalize()} also has {shoes_phrase(o)}{tail}.")


def _h0(i: Identity, o: Outfit) -> str:
    bag = bag_phrase(o)
    tail = f" In one hand there is {bag}." if bag and "handbag" in bag else (f" On the back or shoulder: {bag}." if bag else "")
    return (f"Pedestrian: {_subject(i)}, {i.build} build, {hair_phrase(i)}. Upper body in {top_phrase(o)}; "
            f"lower body in {bottom_phrase(o)}; feet in {shoes_phrase(o)}.{tail}")


def _h1(i: Identity, o: Outfit) -> str:
    he, his = _pronoun(i)
    bag = bag_phrase(o)
    tail = f", and {he} is not empty-handed: {bag}" if bag else ", and nothing is carried"
    return (f"Seen walking along, {_article(i.height + ' ' + _subject(i))} whose {hair_phrase(i).replace('a shaved head', 'head is shaved')} "
            f"stands out puts on {top_phrase(o)} over {bottom_phrase(o)}; {his} footwear is {shoes_phrase(o)}{tail}.")


def _h2(i: Identity, o: Outfit) -> str:
    bag = bag_phrase(o)
    tail = f" plus {bag}" if bag else ""
    return (f"Wearing {bottom_phrase(o)}, {shoes_phrase(o)} and {top_phrase(o)}{tail}, this {_subject(i)} "
            f"has {hair_phrase(i)}.")


#: Sentence patterns of the ground-truth captions (``phrasing="default"``).
PATTERNS: tuple[Callable[[Identity, Outfit], str], ...] = (_p0, _p1, _p2, _p3, _p4)
#: Held-out patterns (``phrasing="heldout"``): other word orders, connectives and frames, used for the target
#: benchmark of the miniature world (DESIGN.md §8) so its ground truth is phrased in ways no captioner
#: trained on :data:`PATTERNS` ever wrote.
HELDOUT_PATTERNS: tuple[Callable[[Identity, Outfit], str], ...] = (_h0, _h1, _h2)
PHRASINGS: dict[str, tuple[Callable[[Identity, Outfit], str], ...]] = {
    "default": PATTERNS, "heldout": HELDOUT_PATTERNS}


def full_caption(identity: Identity, outfit: Outfit, pattern: int, phrasing: str = "default") -> str:
    """The description of ``identity`` in ``outfit`` in sentence pattern ``pattern`` of ``phrasing``."""
    patterns = PHRASINGS[phrasing]
    return patterns[pattern % len(patterns)](identity, outfit)


def pick_patterns(rng: np.random.Generator, count: int, phrasing: str = "default") -> list[int]:
    """``count`` distinct pattern indices (two annotators rarely write the same way)."""
    return [int(p) for p in rng.permutation(len(PHRASINGS[phrasing]))[:count]]


def identity_text(identity: Identity) -> str:
    """Identity traits only (no apparel): gender, build, height, skin tone and hair."""
    return (f"A {identity.height} {identity.build} {identity.gender} with {identity.skin} skin and "
            f"{hair_phrase(identity)}.")


def clothing_text(outfit: Outfit) -> str:
    """Clothing only (no biological traits): top, bottom, shoes and bag."""
    bag = bag_phrase(outfit)
    tail = f", carrying {bag}" if bag else ""
    return f"{top_phrase(outfit).capitalize()}, {bottom_phrase(outfit)} and {shoes_phrase(outfit)}{tail}."
