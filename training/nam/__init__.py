"""Noise-aware masking (seed 002 §3.2): token noise (Eq. 1-2), probabilities (Eq. 3-4), the r store."""

from training.nam.masking import (
    DEFAULT_MASK_RATIO,
    MaskedTokens,
    equal_masking_probabilities,
    masking_probabilities,
    masking_seeds,
    sample_token_masking,
)
from training.nam.noise import token_noise, token_similarity
from training.nam.store import NoiseStore

__all__ = [
    "DEFAULT_MASK_RATIO",
    "MaskedTokens",
    "NoiseStore",
    "equal_masking_probabilities",
    "masking_probabilities",
    "masking_seeds",
    "sample_token_masking",
    "token_noise",
    "token_similarity",
]
