"""Caption validation (DESIGN.md §3): lexicons, one function per rule, a policy, and ``validate_caption``."""

from caption_gen.validation.policy import ValidationPolicy
from caption_gen.validation.validate import ValidationResult, validate_caption

__all__ = ["ValidationPolicy", "ValidationResult", "validate_caption"]
