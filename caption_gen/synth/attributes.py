"""Attributes of synthetic pedestrians: what stays fixed per person, per outfit and per image.

Three levels, sampled with separate seeded generators so each level is reproducible on its own:

* :class:`Identity` — traits that never change for a person: gender marker (body shape), skin tone,
  hair style and colour, height, build;
* :class:`Outfit` — what a person wears on one occasion: top type/colour, bottom type/colour, shoe
  colour, bag (or none). A person owns several outfits; images of the same outfit share it;
* :class:`Camera` — per-image capture: background, figure scale, crop offset, small rotation, blur,
  noise, horizontal flip, lighting.

Colours are named so captions can say them; the renderer maps names to RGB through :data:`PALETTE`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Named colours used for clothing, shoes and bags (RGB).
PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (25, 25, 28),
    "white": (235, 235, 232),
    "gray": (128, 128, 132),
    "red": (200, 30, 35),
    "blue": (35, 70, 190),
    "green": (40, 140, 60),
    "yellow": (235, 200, 40),
    "pink": (240, 140, 180),
    "purple": (120, 50, 150),
    "brown": (110, 70, 40),
    "orange": (240, 120, 30),
}
SHOE_COLORS: tuple[str, ...] = ("black", "white", "brown", "gray", "red", "blue")
BAG_COLORS: tuple[str, ...] = ("black", "brown", "gray", "red", "blue", "white")

SKIN_TONES: dict[str, tuple[int, int, int]] = {
    "light": (241, 208, 182),
    "tan": (214, 165, 125),
    "brown": (160, 105, 70),
    "dark": (95, 62, 42),
}
HAIR_COLORS: dict[str, tuple[int, int, int]] = {
    "black": (20, 18, 18),
    "brown": (95, 60, 30),
    "blond": (225, 190, 110),
    "gray": (165, 165, 165),
    "red": (170, 60, 25),
}
#: Hair styles by gender marker (a bald woman or a bun on a man is possible but rarer in real data).
HAIR_STYLES: dict[str, tuple[str, ...]] = {
    "man": ("short", "short", "bald", "long"),
    "woman": ("long", "ponytail", "bun", "short"),
}
HEIGHTS: dict[str, float] = {"short": 0.86, "average": 0.93, "tall": 1.0}
BUILDS: dict[str, float] = {"slim": 0.84, "average": 1.0, "heavy": 1.22}

TOP_TYPES: tuple[str, ...] = ("t-shirt", "long-sleeved shirt", "jacket", "coat", "vest")
BOTTOM_TYPES: dict[str, tuple[str, ...]] = {
    "man": ("trousers", "trousers", "shorts"),
    "woman": ("trousers", "shorts", "skirt", "long skirt"),
}
BAG_TYPES: tuple[str, ...] = ("none", "backpack", "handbag", "shoulder bag")

BACKGROUNDS: tuple[str, ...] = ("plain", "street", "stripes", "gradient")


@dataclass(frozen=True)
class Identity:
    """Traits fixed for one person."""

    person_id: int
    gender: str
    skin: str
    hair_style: str
    hair_color: str
    height: str
    build: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Outfit:
    """What a person wears on one occasion."""

    outfit_id: int
    top_type: str
    top_color: str
    bottom_type: str
    bottom_color: str
    shoes_color: str
    bag: str
    bag_color: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Camera:
    """How one image of a person was captured."""

    background: str
    background_colors: tuple[tuple[int, int, int], tuple[int, int, int]]
    scale: float  # figure height as a share of the image height
    offset: tuple[float, float]  # figure centre shift (x, y) as a share of width/height
    rotation: float  # degrees
    blur: float  # Gaussian radius in pixels (0 = none)
    noise: float  # std of additive Gaussian noise (0..255 scale)
    flip: bool
    brightness: float  # multiplicative lighting factor
    walking_phase: float  # -1..1: leg/arm swing

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["background_colors"] = [list(c) for c in self.background_colors]
        d["offset"] = list(self.offset)
        return d


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def sample_identity(person_id: int, rng: np.random.Generator) -> Identity:
    """Draw the fixed traits of person ``person_id``."""
    gender = _pick(rng, ("man", "woman"))
    style = _pick(rng, HAIR_STYLES[gender])
    return Identity(
        person_id=person_id,
        gender=gender,
        skin=_pick(rng, tuple(SKIN_TONES)),
        hair_style=style,
        hair_color="none" if style == "bald" else _pick(rng, tuple(HAIR_COLORS)),
        height=_pick(rng, tuple(HEIGHTS)),
        build=_pick(rng, tuple(BUILDS)),
    )


def sample_outfit(identity: Identity, outfit_id: int, rng: np.random.Generator) -> Outfit:
    """Draw one outfit for ``identity``; top and bottom colours differ so both stay visible."""
    colors = tuple(PALETTE)
    top_color = _pick(rng, colors)
    bottom_color = _pick(rng, tuple(c for c in colors if c != top_color))
    bag = _pick(rng, BAG_TYPES)
    return Outfit(
        outfit_id=outfit_id,
        top_type=_pick(rng, TOP_TYPES),
        top_color=top_color,
        bottom_type=_pick(rng, BOTTOM_TYPES[identity.gender]),
        bottom_color=bottom_color,
        shoes_color=_pick(rng, SHOE_COLORS),
        bag=bag,
        bag_color=None if bag == "none" else _pick(rng, BAG_COLORS),
    )


def sample_camera(rng: np.random.Generator) -> Camera:
    """Draw the capture conditions of one image."""
    base = rng.integers(60, 200, size=3)
    second = np.clip(base + rng.integers(-50, 51, size=3), 0, 255)
    return Camera(
        background=_pick(rng, BACKGROUNDS),
        background_colors=(tuple(int(v) for v in base), tuple(int(v) for v in second)),  # type: ignore[arg-type]
        scale=float(rng.uniform(0.78, 0.94)),
        offset=(float(rng.uniform(-0.08, 0.08)), float(rng.uniform(-0.03, 0.03))),
        rotation=float(rng.uniform(-5.0, 5.0)),
        blur=float(rng.choice([0.0, 0.0, 0.6, 1.0])),
        noise=float(rng.uniform(0.0, 8.0)),
        flip=bool(rng.integers(2)),
        brightness=float(rng.uniform(0.8, 1.15)),
        walking_phase=float(rng.uniform(-1.0, 1.0)),
    )
