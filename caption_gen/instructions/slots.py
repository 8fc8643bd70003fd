"""Typed slots of TDE description templates (seed 002 §3.1, "Diversity Enhancement").

A template is a sentence pattern whose variable parts are bracketed slots, e.g.::

    "A [person/woman/man] with [hair description], dressed in [clothing description] and [footwear description]."

The slot parser validates a template: every ``[...]`` must name a known slot type, brackets must be
balanced and not nested, and a template must contain at least one slot. Both the shipped template
bank and mined templates (caption_gen.styles / template mining) go through :func:`parse_template`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

#: Slot types a template may use, with what the MLLM is expected to put there.
SLOT_TYPES: dict[str, str] = {
    "person/woman/man": "the subject noun chosen from the visible gender (person, woman, man)",
    "clothing description": "all visible clothing with colors and patterns",
    "upper clothing description": "the upper-body garment(s) with colors and patterns",
    "lower clothing description": "the lower-body garment(s) with colors and patterns",
    "hair description": "hairstyle, length and color",
    "footwear description": "shoes or other footwear with colors",
    "belongings description": "carried items such as bags, backpacks, umbrellas, phones",
    "accessory description": "worn accessories such as hats, glasses, scarves, watches, masks",
    "age description": "the apparent age group",
    "body description": "build and height",
    "pose description": "posture or action (walking, standing, facing the camera)",
}

_SLOT_RE = re.compile(r"\[([^\[\]]*)\]")


class TemplateError(ValueError):
    """A template is malformed; the message names the template and the reason."""


@dataclass(frozen=True)
class Template:
    """A validated TDE template."""

    template_id: str
    text: str
    slots: tuple[str, ...]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def template_id_for(text: str) -> str:
    """Stable id of a template: ``tde-`` + first 12 hex digits of the sha256 of its normalized text."""
    norm = " ".join(text.split())
    return "tde-" + hashlib.sha256(norm.encode("utf-8")).hexdigest()[:12]


def _check_brackets(text: str, name: str) -> None:
    depth = 0
    for pos, ch in enumerate(text):
        if ch == "[":
            depth += 1
            if depth > 1:
                raise TemplateError(f"template {name}: nested '[' at character {pos}")
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise TemplateError(f"template {name}: unbalanced ']' at character {pos}")
    if depth != 0:
        raise TemplateError(f"template {name}: unbalanced '[' (missing ']')")


def parse_template(text: str, template_id: str | None = None) -> Template:
    """Validate ``text`` and return a :class:`Template`.

    Raises :class:`TemplateError` naming the template (its id, or its text when no id is given) on:
    empty text, unbalanced or nested brackets, an unknown slot type, or no slot at all.
    Slot names are matched case-insensitively with surrounding whitespace ignored, and are
    normalized to the canonical spelling in the returned template's ``slots``.
    """
    if not isinstance(text, str) or not text.strip():
        raise TemplateError(f"template {template_id or '<empty>'}: empty template")
    name = template_id or repr(text if len(text) <= 80 else text[:77] + "...")
    _check_brackets(text, name)
    slots: list[str] = []
    for match in _SLOT_RE.finditer(text):
        raw = " ".join(match.group(1).split()).lower()
        if raw not in SLOT_TYPES:
            known = ", ".join(f"[{s}]" for s in SLOT_TYPES)
            raise TemplateError(f"template {name}: unknown slot [{match.group(1)}] (known slots: {known})")
        slots.append(raw)
    if not slots:
        raise TemplateError(f"template {name}: no slot (a template needs at least one [slot])")
    clean = " ".join(text.split())
    return Template(template_id=template_id or template_id_for(clean), text=clean, slots=tuple(slots))
