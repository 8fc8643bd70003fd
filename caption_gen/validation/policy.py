"""Validation policy: thresholds of the caption validation rules, with per-kind overrides.

Top-level values apply to every kind; ``kinds.<kind>`` overrides them (only the fields it sets). The
defaults for each kind (length bounds, the attribute groups that count for coverage, the groups that are
leakage) are in :data:`DEFAULT_KIND_POLICIES`; a config's ``kinds`` entry is merged over them.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from caption_gen.validation.lexicon import GROUPS
from pedes_core.configuration import ConfigModel
from pedes_core.errors import ConfigError

#: Reasons: stable short names written into ``validation.reasons`` / rejects.
LEAKAGE_REASONS = {"identity": "leakage:clothing", "clothing": "leakage:identity"}


def _check_groups(groups: list[str] | None) -> list[str] | None:
    if groups is None:
        return None
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"unknown attribute group(s) {unknown} (known: {sorted(GROUPS)})")
    return groups


class KindPolicy(ConfigModel):
    """Per-kind overrides; ``None`` means: use the top-level value / the kind default."""

    min_words: int | None = Field(default=None, ge=0)
    max_words: int | None = Field(default=None, ge=1)
    coverage_groups: list[str] | None = None
    min_coverage: float | None = Field(default=None, ge=0.0, le=1.0)
    check_leakage: bool | None = None

    @field_validator("coverage_groups")
    @classmethod
    def _known_groups(cls, value: list[str] | None) -> list[str] | None:
        return _check_groups(value)


#: Built-in per-kind defaults (documented choices; seed 002 gives no thresholds).
DEFAULT_KIND_POLICIES: dict[str, KindPolicy] = {
    "static": KindPolicy(min_words=8, max_words=120,
                         coverage_groups=["clothing", "shoes", "hair", "gender", "belongings"], min_coverage=0.4),
    "dynamic": KindPolicy(min_words=8, max_words=120,
                          coverage_groups=["clothing", "shoes", "hair", "gender", "belongings"], min_coverage=0.4),
    "identity": KindPolicy(min_words=5, max_words=80,
                           coverage_groups=["gender", "age", "build", "hair", "skin", "posture"],
                           min_coverage=0.3, check_leakage=True),
    "clothing": KindPolicy(min_words=5, max_words=90,
                           coverage_groups=["clothing", "shoes", "belongings", "color", "pattern"],
                           min_coverage=0.4, check_leakage=True),
}


class EffectivePolicy(ConfigModel):
    """The resolved thresholds for one kind."""

    kind: str
    min_words: int
    max_words: int
    coverage_groups: list[str]
    min_coverage: float
    check_leakage: bool
    ngram: int
    max_repeat_ngram_share: float
    max_token_run: int
    max_non_alpha_share: float
    max_token_chars: int
    max_unknown_word_share: float
    max_leakage_words: int
    require_sentence_end: bool
    max_grammar_errors: int


class ValidationPolicy(ConfigModel):
    """Thresholds of the validation rules (DESIGN.md §3)."""

    min_words: int | None = Field(default=None, ge=0, description="Override of every kind's minimum words.")
    max_words: int | None = Field(default=None, ge=1, description="Override of every kind's maximum words.")
    min_coverage: float | None = Field(default=None, ge=0.0, le=1.0, description="Override of every kind's coverage.")
    ngram: int = Field(default=3, ge=1, description="n of the repeated n-gram share.")
    max_repeat_ngram_share: float = Field(default=0.3, ge=0.0, le=1.0,
                                          description="Share of n-grams that repeat an earlier one.")
    max_token_run: int = Field(default=4, ge=2, description="Longest run of the same word allowed.")
    max_non_alpha_share: float = Field(default=0.2, ge=0.0, le=1.0,
                                       description="Share of tokens that are not words (junk).")
    max_token_chars: int = Field(default=24, ge=4, description="Longer tokens count as junk.")
    max_unknown_word_share: float = Field(default=0.3, ge=0.0, le=1.0,
                                          description="Share of words missing from the English dictionary (junk).")
    max_leakage_words: int = Field(default=0, ge=0, description="Leakage words tolerated in identity/clothing texts.")
    require_sentence_end: bool = True
    max_grammar_errors: int = Field(default=1, ge=0, description="Sentence-sanity violations tolerated.")
    kinds: dict[str, KindPolicy] = Field(default_factory=dict)

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: dict[str, KindPolicy]) -> dict[str, KindPolicy]:
        unknown = set(value) - set(DEFAULT_KIND_POLICIES)
        if unknown:
            raise ValueError(f"unknown caption kind(s) {sorted(unknown)} (known: {', '.join(DEFAULT_KIND_POLICIES)})")
        return value

    def for_kind(self, kind: str) -> EffectivePolicy:
        """Resolve kind default ← top-level override ← ``kinds.<kind>`` override."""
        if kind not in DEFAULT_KIND_POLICIES:
            raise ConfigError(f"unknown caption kind {kind!r} (known: {', '.join(DEFAULT_KIND_POLICIES)})")
        merged = DEFAULT_KIND_POLICIES[kind].model_dump()
        for key in ("min_words", "max_words", "min_coverage"):
            if getattr(self, key) is not None:
                merged[key] = getattr(self, key)
        if kind in self.kinds:
            merged.update({k: v for k, v in self.kinds[kind].model_dump().items() if v is not None})
        return EffectivePolicy(
            kind=kind, min_words=merged["min_words"], max_words=merged["max_words"],
            coverage_groups=list(merged["coverage_groups"]), min_coverage=merged["min_coverage"],
            check_leakage=bool(merged["check_leakage"]), ngram=self.ngram,
            max_repeat_ngram_share=self.max_repeat_ngram_share, max_token_run=self.max_token_run,
            max_non_alpha_share=self.max_non_alpha_share, max_token_chars=self.max_token_chars,
            max_unknown_word_share=self.max_unknown_word_share,
            max_leakage_words=self.max_leakage_words, require_sentence_end=self.require_sentence_end,
            max_grammar_errors=self.max_grammar_errors)
