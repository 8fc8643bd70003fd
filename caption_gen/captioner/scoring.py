"""Attribute accuracy of a caption against its image's ground truth (``attributes.jsonl``).

Groups (DESIGN.md §8): ``top_color``, ``top_type``, ``bottom_color``, ``bottom_type``, ``shoes_color``,
``bag`` (type and colour, or none), ``gender``, ``hair`` (style and colour). A caption is read with
the renderer's vocabulary: ``<colour> <garment>`` for top and bottom, ``<colour> shoes``,
``<colour> <bag type>``, gender nouns/pronouns and the hair phrases of
:func:`caption_gen.synth.captions.hair_phrase`. A group the caption does not mention counts as wrong
(except a bag when there is none). :func:`applicable_groups` says which groups a caption of a kind
(and TDE template) is expected to state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from caption_gen.synth.attributes import (
    BAG_TYPES,
    BOTTOM_TYPES,
    HAIR_COLORS,
    PALETTE,
    TOP_TYPES,
    Identity,
    Outfit,
)

GROUPS: tuple[str, ...] = ("top_color", "top_type", "bottom_color", "bottom_type", "shoes_color", "bag",
                           "gender", "hair")

_COLORS = "|".join(sorted(PALETTE, key=len, reverse=True))
_TOPS = "|".join(re.escape(t) for t in sorted(TOP_TYPES, key=len, reverse=True))
_BOTTOMS = "|".join(re.escape(t) for t in sorted({b for v in BOTTOM_TYPES.values() for b in v}, key=len, reverse=True))
_BAGS = "|".join(re.escape(t) for t in sorted((b for b in BAG_TYPES if b != "none"), key=len, reverse=True))
_HAIRC = "|".join(HAIR_COLORS)
_TOP_RE = re.compile(rf"\b({_COLORS}) ({_TOPS})\b")
_BOTTOM_RE = re.compile(rf"\b({_COLORS}) ({_BOTTOMS})\b")
_SHOES_RE = re.compile(rf"\b({_COLORS}) shoes\b")
_BAG_RE = re.compile(rf"\b({_COLORS}) ({_BAGS})\b")
_HAIR_RES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ponytail", re.compile(rf"\b({_HAIRC}) hair tied in a ponytail\b")),
    ("bun", re.compile(rf"\b({_HAIRC}) hair in a bun\b")),
    ("short", re.compile(rf"\bshort ({_HAIRC}) hair\b")),
    ("long", re.compile(rf"\blong ({_HAIRC}) hair\b")),
)
_WOMAN_RE = re.compile(r"\b(woman|women|she|her|hers|herself|lady|female)\b")
_MAN_RE = re.compile(r"\b(man|men|he|his|him|himself|gentleman|male)\b")

#: Which slots of a TDE template state which groups.
_SLOT_GROUPS: dict[str, tuple[str, ...]] = {
    "person/woman/man": ("gender",),
    "clothing description": ("top_color", "top_type", "bottom_color", "bottom_type"),
    "upper clothing description": ("top_color", "top_type"),
    "lower clothing description": ("bottom_color", "bottom_type"),
    "hair description": ("hair",),
    "footwear description": ("shoes_color",),
    "belongings description": ("bag",),
}
_KIND_GROUPS: dict[str, tuple[str, ...]] = {
    "static": GROUPS,
    "identity": ("gender", "hair"),
    "clothing": ("top_color", "top_type", "bottom_color", "bottom_type", "shoes_color", "bag"),
}


def applicable_groups(kind: str, template_slots: tuple[str, ...] | list[str] | None = None) -> tuple[str, ...]:
    """Groups a caption of ``kind`` should state (dynamic: those its template has a slot for)."""
    if kind == "dynamic":
        found = {g for s in (template_slots or ()) for g in _SLOT_GROUPS.get(s, ())}
        return tuple(g for g in GROUPS if g in found)
    return _KIND_GROUPS.get(kind, ())


@dataclass(frozen=True)
class Reading:
    """What a caption says, group by group (None: not stated)."""

    values: dict[str, str | None]


def read_caption(caption: str) -> Reading:
    """Attribute values a caption states (first mention of each group)."""
    text = " ".join(caption.lower().split())
    v: dict[str, str | None] = dict.fromkeys(GROUPS)
    if m := _TOP_RE.search(text):
        v["top_color"], v["top_type"] = m.group(1), m.group(2)
    # the bottom garment: the first colour+bottom match that is not inside the top's phrase
    if m := _BOTTOM_RE.search(text):
        v["bottom_color"], v["bottom_type"] = m.group(1), m.group(2)
    if m := _SHOES_RE.search(text):
        v["shoes_color"] = m.group(1)
    if m := _BAG_RE.search(text):
        v["bag"] = f"{m.group(1)} {m.group(2)}"
    elif re.search(r"\bno bag\b|\bno bag is\b", text):
        v["bag"] = "none"
    woman, man = bool(_WOMAN_RE.search(text)), bool(_MAN_RE.search(text))
    if woman != man:
        v["gender"] = "woman" if woman else "man"
    elif woman and man:
        v["gender"] = "both"
    if re.search(r"\b(a )?shaved head\b|\bhead is shaved\b|\bbald\b", text):
        v["hair"] = "bald"
    else:
        for style, rx in _HAIR_RES:
            if m := rx.search(text):
                v["hair"] = f"{style} {m.group(1)}"
                break
    return Reading(v)


def truth(identity: Identity, outfit: Outfit) -> dict[str, str]:
    """The ground-truth value of every group, in :func:`read_caption`'s form."""
    hair = "bald" if identity.hair_style == "bald" else f"{identity.hair_style} {identity.hair_color}"
    return {
        "top_color": outfit.top_color, "top_type": outfit.top_type,
        "bottom_color": outfit.bottom_color, "bottom_type": outfit.bottom_type,
        "shoes_color": outfit.shoes_color,
        "bag": "none" if outfit.bag == "none" else f"{outfit.bag_color} {outfit.bag}",
        "gender": identity.gender, "hair": hair,
    }


def score_caption(caption: str, identity: Identity, outfit: Outfit, groups: tuple[str, ...]) -> dict[str, bool]:
    """Per group of ``groups``: does the caption state the true value? (bag none: no bag stated is right)."""
    said = read_caption(caption).values
    gt = truth(identity, outfit)
    out = {}
    for g in groups:
        if g == "bag" and gt["bag"] == "none":
            out[g] = said["bag"] in (None, "none")
        else:
            out[g] = said[g] == gt[g]
    return out
