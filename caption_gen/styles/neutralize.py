"""Content neutralization: keep how a text is written, drop what it says (seed 000 §3.3).

Seed 000 has an MLLM "generalize and substitute entity attributes to emphasize expression style
rather than content". Two interchangeable neutralizers implement :class:`Neutralizer`:

* :class:`RuleNeutralizer` — deterministic: every lexicon phrase (colors, garments, materials, hair,
  footwear, accessories, belongings, numbers; :mod:`caption_gen.styles.lexicons`) becomes its
  group's placeholder (``[color]``, ``[garment]`` ...); digits become ``[number]``. Offline and in tests.
* :class:`LLMNeutralizer` — an LLM rewrite through the captioning backends' text-only path with the
  prompt in ``templates/neutralize_prompt.yaml``. Choice (the paper is silent on failures): a request
  that errors, is cut by the length limit or returns nothing falls back to the rule neutralizer for
  that text and is counted in :attr:`LLMNeutralizer.fallbacks`; the rule neutralizer is also applied
  on top of every LLM output (``post_rules``) so content the LLM left behind is still removed.

Both are measured by :func:`content_survival` — the share of lexicon (content) words of the
originals that are still present after neutralization (0 = all content removed).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

from caption_gen.styles.lexicons import PLACEHOLDERS, count_content_words, group_of, lexicon_pattern

_DIGITS = re.compile(r"(?<![\w\[])\d+(?:[.,]\d+)?(?![\w\]])")


class Neutralizer(Protocol):
    """Turns texts into style-only texts; output list is aligned with the input list."""

    name: str

    def neutralize(self, texts: Sequence[str]) -> list[str]: ...


class RuleNeutralizer:
    """Deterministic lexicon → placeholder substitution (see module docstring)."""

    name = "rules"

    def neutralize_one(self, text: str) -> str:
        out = lexicon_pattern().sub(lambda m: PLACEHOLDERS[group_of(m.group(0))], text)
        return _DIGITS.sub(PLACEHOLDERS["number"], out)

    def neutralize(self, texts: Sequence[str]) -> list[str]:
        return [self.neutralize_one(t) for t in texts]


class LLMNeutralizer:
    """LLM rewrite into placeholders via a :class:`~caption_gen.backends.base.CaptionBackend` (text-only)."""

    name = "llm"

    def __init__(
        self,
        backend: Any,
        *,
        prompt_file: str = "neutralize_prompt.yaml",
        batch_size: int = 64,
        post_rules: bool = True,
        sampling: dict[str, Any] | None = None,
    ) -> None:
        from caption_gen.styles.llm import PromptTemplate

        self.backend = backend
        self.prompt = PromptTemplate.load(prompt_file)
        self.batch_size = batch_size
        self.post_rules = post_rules
        self.sampling = dict(self.prompt.sampling, **(sampling or {}))
        self.rules = RuleNeutralizer()
        self.fallbacks: dict[str, int] = {}

    def neutralize(self, texts: Sequence[str]) -> list[str]:
        from caption_gen.styles.llm import generate_texts

        prompts = [self.prompt.render(text=t) for t in texts]
        outputs = generate_texts(self.backend, prompts, system=self.prompt.system, batch_size=self.batch_size,
                                 **self.sampling)
        result: list[str] = []
        for text, (out, reason) in zip(texts, outputs, strict=True):
            if out is None:
                self.fallbacks[reason] = self.fallbacks.get(reason, 0) + 1
                result.append(self.rules.neutralize_one(text))
                continue
            cleaned = _clean_llm_output(out)
            result.append(self.rules.neutralize_one(cleaned) if self.post_rules else cleaned)
        return result


def _clean_llm_output(text: str) -> str:
    text = text.strip()
    for prefix in ("Rewritten:", "Rewritten text:", "Output:", "Neutralized:"):
        if text.lower().startswith(prefix.lower()):
            text = text[len(prefix):].strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return " ".join(text.split())


def content_survival(originals: Sequence[str], neutralized: Sequence[str]) -> float:
    """Share of the originals' lexicon (content) words still present after neutralization.

    ``sum(content words in neutralized) / sum(content words in originals)``; 0.0 when the originals
    hold no content word. Lower is better.
    """
    if len(originals) != len(neutralized):
        raise ValueError(f"content_survival: {len(originals)} originals vs {len(neutralized)} neutralized texts")
    before = sum(count_content_words(t) for t in originals)
    if before == 0:
        return 0.0
    after = sum(count_content_words(t) for t in neutralized)
    return min(1.0, after / before)


def make_neutralizer(kind: str, backend: Any = None, **kwargs: Any) -> Neutralizer:
    """``"rules"`` → :class:`RuleNeutralizer`; ``"llm"`` → :class:`LLMNeutralizer` (needs ``backend``);
    ``"none"`` → identity."""
    if kind == "rules":
        return RuleNeutralizer()
    if kind == "llm":
        if backend is None:
            from pedes_core.errors import ConfigError

            raise ConfigError("neutralizer 'llm' needs a captioning backend (styles.backend in the config)")
        return LLMNeutralizer(backend, **kwargs)
    if kind == "none":
        return _Identity()
    from pedes_core.errors import ConfigError

    raise ConfigError(f"unknown neutralizer {kind!r} (choose rules, llm or none)")


class _Identity:
    name = "none"

    def neutralize(self, texts: Sequence[str]) -> list[str]:
        return list(texts)
