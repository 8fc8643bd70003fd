"""Injected caption noise: the captioner hallucinates at a known rate, as real MLLMs do.

With ``rate`` r, every attribute value a target names (gender, hair style and colour, skin, height,
build, top/bottom type and colour, shoe colour, bag type and colour) is, independently with
probability r, replaced by a *different* value of the same attribute before the target text is
written. The model trained on such targets names a wrong value about r of the time — the noise that
NAM (seed 002) exists to down-weight.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from caption_gen.synth.attributes import (
    BAG_COLORS,
    BAG_TYPES,
    BOTTOM_TYPES,
    BUILDS,
    HAIR_COLORS,
    HAIR_STYLES,
    HEIGHTS,
    PALETTE,
    SHOE_COLORS,
    SKIN_TONES,
    TOP_TYPES,
    Identity,
    Outfit,
)


def _other(rng: np.random.Generator, value: str, options: tuple[str, ...] | list[str]) -> str:
    choices = [o for o in options if o != value]
    return choices[int(rng.integers(len(choices)))] if choices else value


def corrupt(identity: Identity, outfit: Outfit, rate: float,
            rng: np.random.Generator) -> tuple[Identity, Outfit, int]:
    """Copies of the records with each attribute value replaced with probability ``rate``.

    Returns the corrupted identity, outfit and how many values were replaced."""
    if rate <= 0:
        return identity, outfit, 0
    changed = 0

    def flip() -> bool:
        nonlocal changed
        hit = bool(rng.random() < rate)
        changed += hit
        return hit

    i = dataclasses.asdict(identity)
    o = dataclasses.asdict(outfit)
    if flip():
        i["gender"] = _other(rng, i["gender"], ("man", "woman"))
    if flip():
        i["hair_style"] = _other(rng, i["hair_style"], sorted(set(HAIR_STYLES["man"]) | set(HAIR_STYLES["woman"])))
    if i["hair_style"] == "bald":
        i["hair_color"] = "none"
    elif i["hair_color"] == "none" or flip():
        i["hair_color"] = _other(rng, i["hair_color"], tuple(HAIR_COLORS))
    if flip():
        i["skin"] = _other(rng, i["skin"], tuple(SKIN_TONES))
    if flip():
        i["height"] = _other(rng, i["height"], tuple(HEIGHTS))
    if flip():
        i["build"] = _other(rng, i["build"], tuple(BUILDS))
    if flip():
        o["top_type"] = _other(rng, o["top_type"], TOP_TYPES)
    if flip():
        o["top_color"] = _other(rng, o["top_color"], tuple(PALETTE))
    if o["bottom_type"] not in BOTTOM_TYPES[i["gender"]] or flip():
        o["bottom_type"] = _other(rng, o["bottom_type"], BOTTOM_TYPES[i["gender"]])
    if flip():
        o["bottom_color"] = _other(rng, o["bottom_color"], tuple(PALETTE))
    if flip():
        o["shoes_color"] = _other(rng, o["shoes_color"], SHOE_COLORS)
    if flip():
        o["bag"] = _other(rng, o["bag"], BAG_TYPES)
    if o["bag"] == "none":
        o["bag_color"] = None
    elif o["bag_color"] is None or flip():
        o["bag_color"] = _other(rng, o["bag_color"] or "", BAG_COLORS)
    return Identity(**i), Outfit(**o), changed
