"""Epoch orders and the rank/accumulation-aware batch sampler.

* :func:`random_order` — a seeded permutation (the corpus: every image is its own identity, seed
  002 §3.3, so a random batch holds distinct identities).
* :func:`pk_order` — PK identity sampling for benchmarks (fast-reid style): each identity's samples
  are shuffled and cut into groups of ``K`` (the last group is filled by re-drawing from the same
  identity); in round ``r`` the ``r``-th group of every identity that has one is taken, identities in
  random order, so consecutive ``P × K`` samples hold ``P`` distinct identities except across a
  round boundary.
* :class:`GlobalBatchSampler` — cuts the epoch order into *global* batches of
  ``micro_batch × world_size × accumulation`` samples. Micro-batch ``a·world + rank`` of a global batch
  is the one rank ``rank`` runs at accumulation step ``a``: a 2-process DDP run and a 1-process run
  with 2 accumulation steps see the same samples in every optimizer step. Orders depend only on
  (seed, epoch), so they are identical on every rank and after a resume (``start_step``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


def _rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch])


def random_order(num_samples: int, seed: int, epoch: int) -> np.ndarray:
    """A permutation of ``range(num_samples)`` fixed by (seed, epoch)."""
    return _rng(seed, epoch).permutation(num_samples)


def pk_order(person_ids: Sequence[int] | np.ndarray, instances: int, seed: int, epoch: int) -> np.ndarray:
    """Sample indices in PK order (see module docstring); every sample appears at least once."""
    rng = _rng(seed, epoch)
    pids = np.asarray(person_ids)
    order = np.argsort(pids, kind="stable")
    boundaries = np.flatnonzero(np.r_[True, pids[order][1:] != pids[order][:-1], True])
    groups_per_id: list[list[np.ndarray]] = []
    for start, end in zip(boundaries[:-1], boundaries[1:], strict=True):
        members = rng.permutation(order[start:end])
        short = (-len(members)) % instances
        if short:
            members = np.concatenate([members, rng.choice(members, size=short, replace=True)])
        groups_per_id.append(list(members.reshape(-1, instances)))
    out: list[np.ndarray] = []
    rounds = max((len(g) for g in groups_per_id), default=0)
    for r in range(rounds):
        active = [g[r] for g in groups_per_id if len(g) > r]
        for i in rng.permutation(len(active)):
            out.append(active[i])
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


class GlobalBatchSampler(Sampler[list[int]]):
    """Yields this rank's micro-batches (lists of dataset indices) for one epoch; see module docstring.

    ``order_fn(epoch) -> indices`` gives the epoch order; incomplete global batches are dropped
    (every optimizer step sees the same number of samples)."""

    def __init__(
        self,
        order_fn: Callable[[int], np.ndarray],
        num_samples: int,
        micro_batch: int,
        *,
        world_size: int = 1,
        rank: int = 0,
        accumulation: int = 1,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.order_fn = order_fn
        self.num_samples = num_samples
        self.micro_batch = micro_batch
        self.world_size = world_size
        self.rank = rank
        self.accumulation = accumulation
        self.epoch = 0
        self.start_step = 0

    @property
    def global_batch(self) -> int:
        return self.micro_batch * self.world_size * self.accumulation

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Select the epoch; skip its first ``start_step`` optimizer steps (resume)."""
        self.epoch = epoch
        self.start_step = start_step

    def steps_per_epoch(self, num_samples: int | None = None) -> int:
        """Optimizer steps per epoch (from the epoch order's length; PK orders may exceed N)."""
        n = len(self.order_fn(self.epoch)) if num_samples is None else num_samples
        return n // self.global_batch

    def __iter__(self) -> Iterator[list[int]]:
        order = self.order_fn(self.epoch)
        steps = len(order) // self.global_batch
        for step in range(self.start_step, steps):
            base = step * self.global_batch
            for acc in range(self.accumulation):
                chunk = acc * self.world_size + self.rank
                start = base + chunk * self.micro_batch
                yield [int(i) for i in order[start : start + self.micro_batch]]

    def __len__(self) -> int:
        return max(0, self.steps_per_epoch() - self.start_step) * self.accumulation
