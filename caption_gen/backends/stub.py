"""A deterministic backend that returns fixed, well-formed captions (tests and the overhead benchmark).

Not a model: it ignores the image and fills a per-kind caption pattern with words drawn by a
``random.Random`` seeded from the request's seed and ``metadata["image_id"]``, so the same request
always gets the same caption and different images get different ones. Patterns are written to pass
the project's validation rules: static/dynamic cover clothing, shoes, hair, gender and belongings;
identity texts mention no apparel; clothing texts mention no biological traits. Text-only requests
(style tools) get the ``text`` pattern.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from caption_gen.backends.base import GenerationRequest, GenerationResult, resolve_sampling
from caption_gen.backends.spec import ModelSpec

COLORS = ("red", "blue", "black", "white", "green", "grey", "brown", "yellow")
TOPS = ("shirt", "jacket", "sweater", "coat", "T-shirt")
BOTTOMS = ("jeans", "trousers", "shorts", "skirt")
SHOES = ("sneakers", "boots", "shoes", "sandals")
BAGS = ("backpack", "handbag", "shoulder bag")
HAIR = ("short", "long", "curly", "straight")
PEOPLE = (("woman", "She"), ("man", "He"))
AGES = ("young", "middle-aged", "adult")
BUILDS = ("slim", "medium", "sturdy")

DEFAULT_PATTERNS: dict[str, list[str]] = {
    "static": [
        "A {age} {person} with {hair} {hcolor} hair is wearing a {c1} {top}, {c2} {bottom} and {c3} {shoes}. "
        "{Pron} is carrying a {c4} {bag}.",
    ],
    "dynamic": [
        "The {person} has {hair} {hcolor} hair and wears a {c1} {top} with {c2} {bottom} and {c3} {shoes}, "
        "and a {c4} {bag} hangs from one shoulder.",
    ],
    "identity": [
        "A {age} {person} of {build} build with {hair} {hcolor} hair and a calm face, "
        "standing upright with a relaxed posture.",
    ],
    "clothing": [
        "A {c1} {top} over {c2} {bottom}, with {c3} {shoes} and a {c4} {bag} carried on one shoulder.",
    ],
    "text": ["The person wears a {c1} {top} and {c2} {bottom}."],
}


def _kind_from_request_id(request_id: str) -> str | None:
    """The kind inside an engine request id ``image_id|kind|model|aN`` (requests relayed over HTTP)."""
    parts = request_id.split("|")
    return parts[1] if len(parts) >= 2 and parts[1] in DEFAULT_PATTERNS else None


class StubBackend:
    """Deterministic fixed-pattern captions; counts the requests it served (``calls``, ``served``)."""

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.name = spec.label
        self.patterns = {**DEFAULT_PATTERNS, **(spec.stub_captions or {})}
        self.calls = 0
        self.served = 0

    def _fill(self, request: GenerationRequest) -> str:
        kind = request.metadata.get("kind") or _kind_from_request_id(request.request_id)
        kind = str(kind or ("text" if request.image is None else "static"))
        patterns = self.patterns.get(kind) or self.patterns["static"]
        key = f"{request.seed}:{request.metadata.get('image_id', request.request_id)}:{kind}"
        rng = random.Random(key)
        person, pron = rng.choice(PEOPLE)
        c = rng.sample(COLORS, 5)
        return rng.choice(patterns).format(
            age=rng.choice(AGES), person=person, Pron=pron, hair=rng.choice(HAIR), hcolor=c[4],
            c1=c[0], c2=c[1], c3=c[2], c4=c[3], top=rng.choice(TOPS), bottom=rng.choice(BOTTOMS),
            shoes=rng.choice(SHOES), bag=rng.choice(BAGS), build=rng.choice(BUILDS),
        )

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.calls += 1
        out = []
        for r in requests:
            text = self._fill(r)
            n = len(text.split())
            limit = resolve_sampling(r).max_tokens
            out.append(GenerationResult(r.request_id, text, min(n, limit), "stop"))
        self.served += len(requests)
        return out

    def close(self) -> None:
        return None
