"""Training targets of the captioner: what a good answer to each instruction kind says about one image.

Targets are written from a synthetic pedestrian's attribute records (``attributes.jsonl`` of ``pedes
synth``) in several sentence structures per kind, all *different* from the ground-truth patterns of
:mod:`caption_gen.synth.captions` (the retrieval benchmark keeps its own, held-out phrasings):

* ``static``   — a full description: gender, hair, top, bottom, shoes and the bag (when there is one);
* ``dynamic``  — the drawn TDE template with each slot filled from the attributes
  (:func:`fill_template`), so the answer keeps the template's structure;
* ``identity`` — identity traits only (gender, height, build, skin, hair, posture), no apparel word;
* ``clothing`` — clothing only (top, bottom, shoes, bag), no gender, hair, skin or build word.

Attribute words use the renderer's vocabulary (colour names of :data:`caption_gen.synth.attributes.PALETTE`,
garment types of ``TOP_TYPES`` / ``BOTTOM_TYPES``), so :mod:`caption_gen.captioner.scoring` can read
them back.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from caption_gen.instructions.slots import Template
from caption_gen.synth.attributes import Identity, Outfit
from caption_gen.synth.captions import bag_phrase, bottom_phrase, hair_phrase, shoes_phrase, top_phrase

#: Height / build words for identity texts and the ``[body description]`` slot.
HEIGHT_PHRASE = {"short": "short", "average": "of average height", "tall": "tall"}
HEIGHT_ADJ = {"short": "short", "average": "average-height", "tall": "tall"}
BUILD_ADJ = {"slim": "slim", "average": "average-build", "heavy": "heavy"}


def _he(i: Identity) -> str:
    return "he" if i.gender == "man" else "she"


def _his(i: Identity) -> str:
    return "his" if i.gender == "man" else "her"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def fix_articles(text: str) -> str:
    """``a`` / ``an`` agreeing with the next word (slot fills can change it: "a [age description]")."""
    def repl(m: re.Match[str]) -> str:
        art, word = m.group(1), m.group(2)
        an = word[0].lower() in "aeiou"
        new = ("an" if an else "a")
        return (_cap(new) if art[0].isupper() else new) + " " + word
    return re.sub(r"\b([Aa]n?) ([A-Za-z][\w-]*)", repl, text)


# ------------------------------------------------------------------------------------------- static


def _bag_tail(i: Identity, o: Outfit, with_bag: str, without: str = "") -> str:
    bag = bag_phrase(o)
    return with_bag.format(bag=bag, he=_he(i), He=_cap(_he(i))) if bag else without.format(he=_he(i), He=_cap(_he(i)))


def _s0(i: Identity, o: Outfit) -> str:
    return (f"A {i.gender} with {hair_phrase(i)} is walking in {top_phrase(o)} and {bottom_phrase(o)}, wearing "
            f"{shoes_phrase(o)}." + _bag_tail(i, o, " {He} carries {bag}.", " {He} carries no bag."))


def _s1(i: Identity, o: Outfit) -> str:
    return (f"This {i.gender} wears {top_phrase(o)} with {bottom_phrase(o)} and {shoes_phrase(o)}. "
            f"{_cap(_he(i))} has {hair_phrase(i)}" + _bag_tail(i, o, " and carries {bag}.", "."))


def _s2(i: Identity, o: Outfit) -> str:
    return (f"{_cap(hair_phrase(i))} and {top_phrase(o)} stand out on this {i.gender}, who also wears "
            f"{bottom_phrase(o)} and {shoes_phrase(o)}" + _bag_tail(i, o, ", carrying {bag}.", "."))


def _s3(i: Identity, o: Outfit) -> str:
    return (f"The {i.gender} is dressed in {top_phrase(o)}, {bottom_phrase(o)} and {shoes_phrase(o)}"
            + _bag_tail(i, o, ", with {bag}.", ".") + f" {_cap(_he(i))} has {hair_phrase(i)}.")


def _s4(i: Identity, o: Outfit) -> str:
    return (f"Wearing {top_phrase(o)} and {bottom_phrase(o)}, the {i.gender} with {hair_phrase(i)} walks in "
            f"{shoes_phrase(o)}." + _bag_tail(i, o, f" {_cap(bag_phrase(o) or '')} is carried by the {i.gender}."))


def _s5(i: Identity, o: Outfit) -> str:
    return (f"A {i.gender} in {top_phrase(o)} and {bottom_phrase(o)}. {_cap(_he(i))} has {hair_phrase(i)} and wears "
            f"{shoes_phrase(o)}" + _bag_tail(i, o, ", and {he} carries {bag}.", "."))


STATIC_PHRASINGS: tuple[Callable[[Identity, Outfit], str], ...] = (_s0, _s1, _s2, _s3, _s4, _s5)

# ------------------------------------------------------------------------------------------- identity


def _i0(i: Identity) -> str:
    return f"A {i.gender} with {i.skin} skin and {hair_phrase(i)}, {HEIGHT_PHRASE[i.height]} and {BUILD_ADJ[i.build]}."


def _i1(i: Identity) -> str:
    return (f"The {i.gender} is {HEIGHT_PHRASE[i.height]} and {BUILD_ADJ[i.build]}, with {i.skin} skin and "
            f"{hair_phrase(i)}.")


def _i2(i: Identity) -> str:
    return (f"{_cap(_he(i))} is a {i.gender} with {hair_phrase(i)} and {i.skin} skin; {_his(i)} build is {i.build} "
            f"and {_he(i)} is {HEIGHT_PHRASE[i.height]}.")


def _i3(i: Identity) -> str:
    return fix_articles(f"This {i.gender} has {hair_phrase(i)} and {i.skin} skin, is {HEIGHT_PHRASE[i.height]}, has a "
                        f"{i.build} build and is walking.")


IDENTITY_PHRASINGS: tuple[Callable[[Identity], str], ...] = (_i0, _i1, _i2, _i3)

# ------------------------------------------------------------------------------------------- clothing


def _c0(o: Outfit) -> str:
    bag = bag_phrase(o)
    return f"{_cap(top_phrase(o))}, {bottom_phrase(o)} and {shoes_phrase(o)}" + (f", with {bag}." if bag else ".")


def _c1(o: Outfit) -> str:
    bag = bag_phrase(o)
    return (f"The outfit is {top_phrase(o)} with {bottom_phrase(o)}, worn with {shoes_phrase(o)}."
            + (f" The person carries {bag}." if bag else ""))


def _c2(o: Outfit) -> str:
    bag = bag_phrase(o)
    return f"Wearing {top_phrase(o)} and {bottom_phrase(o)}, with {shoes_phrase(o)}" + (f" and {bag}." if bag else ".")


def _c3(o: Outfit) -> str:
    bag = bag_phrase(o)
    return (f"The person wears {top_phrase(o)}, {bottom_phrase(o)} and {shoes_phrase(o)}"
            + (f", and carries {bag}." if bag else ". No bag is carried."))


CLOTHING_PHRASINGS: tuple[Callable[[Outfit], str], ...] = (_c0, _c1, _c2, _c3)

# ------------------------------------------------------------------------------------------- dynamic


def slot_fills(i: Identity, o: Outfit) -> dict[str, str]:
    """What goes into each TDE slot type (:data:`caption_gen.instructions.slots.SLOT_TYPES`) for one image.

    The renderer draws no accessories and only adults walking: those slots get "no accessories",
    "adult" and "walking" (grounded, not imagined)."""
    return {
        "person/woman/man": i.gender,
        "clothing description": f"{top_phrase(o)} and {bottom_phrase(o)}",
        "upper clothing description": top_phrase(o),
        "lower clothing description": bottom_phrase(o),
        "hair description": hair_phrase(i),
        "footwear description": shoes_phrase(o),
        "belongings description": bag_phrase(o) or "no bag",
        "accessory description": "no accessories",
        "age description": "adult",
        "body description": f"{HEIGHT_ADJ[i.height]} and {BUILD_ADJ[i.build]}",
        "pose description": "walking",
    }


_SLOT_RE = re.compile(r"\[([^\[\]]*)\]")


def fill_template(template: Template, i: Identity, o: Outfit) -> str:
    """The template's text with every slot replaced by its fill; articles agreed, first letter capitalized."""
    fills = slot_fills(i, o)
    text = _SLOT_RE.sub(lambda m: fills[" ".join(m.group(1).split()).lower()], template.text)
    text = fix_articles(text)
    return _cap(text)


# ------------------------------------------------------------------------------------------- entry


def target_text(kind: str, identity: Identity, outfit: Outfit, *, rng: np.random.Generator,
                template: Template | None = None) -> str:
    """One training target of ``kind`` for an image (phrasing drawn with ``rng``; ``template`` for dynamic)."""
    if kind == "static":
        return STATIC_PHRASINGS[int(rng.integers(len(STATIC_PHRASINGS)))](identity, outfit)
    if kind == "dynamic":
        if template is None:
            raise ValueError("a dynamic target needs its TDE template")
        return fill_template(template, identity, outfit)
    if kind == "identity":
        return IDENTITY_PHRASINGS[int(rng.integers(len(IDENTITY_PHRASINGS)))](identity)
    if kind == "clothing":
        return CLOTHING_PHRASINGS[int(rng.integers(len(CLOTHING_PHRASINGS)))](outfit)
    raise ValueError(f"unknown caption kind {kind!r}")
