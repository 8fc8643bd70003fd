"""``validate_caption``: run every validation rule on one caption (DESIGN.md §3).

Rules run in a fixed order; an ``empty`` caption stops there (no other rule is meaningful). Coverage is
computed for every kind over that kind's attribute groups and stored per row; ``low_coverage`` rejects
a caption below the kind's ``min_coverage``. Leakage runs for ``identity`` and ``clothing`` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from caption_gen.validation import rules
from caption_gen.validation.policy import ValidationPolicy


@dataclass(frozen=True)
class ValidationResult:
    """Outcome of :func:`validate_caption`; ``as_row`` is the ``validation`` field of a caption row."""

    passed: bool
    reasons: list[str] = field(default_factory=list)
    covered: list[str] = field(default_factory=list)
    coverage: float | None = None

    def as_row(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": list(self.reasons), "covered": list(self.covered),
                "coverage": self.coverage}


_DEFAULT_POLICY = ValidationPolicy()


def validate_caption(text: str, kind: str, policy: ValidationPolicy | None = None, *,
                     finish_reason: str | None = None) -> ValidationResult:
    """Validate one caption of ``kind`` (static | dynamic | identity | clothing).

    ``finish_reason`` is the backend's (``"length"`` means the token limit cut the text → incomplete).
    Unknown ``kind`` raises :class:`pedes_core.errors.ConfigError`.
    """
    pol = (policy or _DEFAULT_POLICY).for_kind(kind)
    text = text if isinstance(text, str) else ""
    if rules.check_empty(text):
        return ValidationResult(passed=False, reasons=["empty"], covered=[], coverage=0.0)
    reasons: list[str] = []
    reasons += rules.check_refusal(text)
    reasons += rules.check_meta_talk(text)
    reasons += rules.check_unfilled_slot(text)
    reasons += rules.check_repetition(text, ngram=pol.ngram, max_share=pol.max_repeat_ngram_share,
                                      max_run=pol.max_token_run)
    reasons += rules.check_length(text, min_words=pol.min_words, max_words=pol.max_words)
    if pol.require_sentence_end:
        reasons += rules.check_complete_sentence(text, finish_reason=finish_reason)
    reasons += rules.check_grammar(text, max_errors=pol.max_grammar_errors)
    reasons += rules.check_junk(text, max_share=pol.max_non_alpha_share, max_chars=pol.max_token_chars,
                                max_unknown_share=pol.max_unknown_word_share)
    covered, share = rules.coverage(text, pol.coverage_groups)
    reasons += rules.check_coverage(share, min_coverage=pol.min_coverage)
    if pol.check_leakage:
        reasons += rules.check_leakage(text, kind, max_words=pol.max_leakage_words)
    return ValidationResult(passed=not reasons, reasons=reasons, covered=covered, coverage=round(share, 4))
