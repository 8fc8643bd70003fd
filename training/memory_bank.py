"""Per-sample feature memory banks with momentum update (seed 001 §3.3, Eq. 11).

``FeatureBank(size, dim)`` holds one L2-normalized feature per training sample (``[size, dim]``, float32
by default, ``float16`` to halve memory) and a ``filled`` flag per row. ``update(indices, features)``
sets never-seen rows to the new feature (the paper initialises the bank with encoder features) and
otherwise applies ``f̂ ← α f + (1 − α) f̂`` (then re-normalizes, so cosine similarities stay cosines).

Choice: rows are updated right after each step that visits them. With an epoch sampler every sample is
visited once per epoch, so a lookup always sees the feature from the sample's previous visit — the
"stored representation from the previous epoch" of Eq. 11 — without a separate end-of-epoch pass.
Memory: ``size × dim × bytes`` per bank (2 banks: image + text; see ``bytes_per_100k``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SAMPLES_PER_REPORT = 100_000


class FeatureBank(nn.Module):
    """A ``[size, dim]`` feature store (buffers: saved with the model state dict, moved with ``.to``)."""

    def __init__(self, size: int, dim: int, momentum: float = 0.5, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"FeatureBank needs size >= 1 and dim >= 1, got {size}, {dim}")
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"momentum α must lie in (0, 1], got {momentum}")
        self.momentum = momentum
        self.register_buffer("features", torch.zeros(size, dim, dtype=dtype), persistent=True)
        self.register_buffer("filled", torch.zeros(size, dtype=torch.bool), persistent=True)

    @property
    def size(self) -> int:
        return int(self.features.shape[0])

    @torch.no_grad()
    def update(self, indices: torch.Tensor, features: torch.Tensor) -> None:
        """Eq. 11 for the rows ``indices`` (duplicates: the last one wins)."""
        if indices.numel() == 0:
            return
        if int(indices.max()) >= self.size or int(indices.min()) < 0:
            raise IndexError(f"bank index out of range 0..{self.size - 1}")
        new = F.normalize(features.detach().float(), dim=-1)
        old = self.features[indices].float()
        seen = self.filled[indices].unsqueeze(1)
        mixed = torch.where(seen, self.momentum * new + (1 - self.momentum) * old, new)
        self.features[indices] = F.normalize(mixed, dim=-1).to(self.features.dtype)
        self.filled[indices] = True

    def bytes_per_100k(self) -> int:
        """Bytes this bank would take for 100k samples (features + filled flags)."""
        per_row = self.features.shape[1] * self.features.element_size() + self.filled.element_size()
        return per_row * SAMPLES_PER_REPORT
