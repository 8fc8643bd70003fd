"""Retrieval evaluation (DESIGN.md §6): inference (:mod:`eval.inference`) + metrics, fast-reid style.

* :class:`RetrievalEvaluator` is the metrics half (``reset`` / ``process_queries`` /
  ``process_gallery`` / ``evaluate``): it accumulates L2-normalized query and gallery features
  (plus the query tokens and, when a pairwise re-ranker runs, the gallery cache), builds the cosine
  similarity matrix and computes :func:`eval.metrics.retrieval_metrics` (R1/R5/R10, mAP, mINP, mSD in
  percent): text-to-image with the captions as queries, image-to-text on the transpose, and
  ``t2i_rerank`` on a stage-2 score matrix when one is given. It calls no model.
* :func:`eval.inference.inference_on_dataset` / :func:`eval.inference.rerank_on_dataset` make every
  model call: the stage-1 pass decodes each gallery image once; stage 2 reads the already-encoded
  features (list-level re-rankers such as Sew's visual-neighbour re-ranking, :mod:`eval.rerank`) or
  the gallery cache of that pass (pairwise scorers such as BDAM's fusion), never the disk.
* :class:`Evaluator` composes both for a :class:`RetrievalSet` (``run``), as the trainer and the
  protocol use it.

Options a method cannot honour are configuration errors, never silent no-ops: ``rerank_top_k > 0``
on a method that does not declare ``supports_rerank`` raises :class:`~pedes_core.errors.ConfigError`
when the evaluator is built. Both stages are reported: ``t2i`` = stage 1, ``t2i_rerank`` = stage 2
(no mSD for stage 2: re-ranked scores are no cosine similarities). ``msd_order`` (``ranked``, the
seed 004 §3.4 formula, or ``gallery``, the public UFineBench calculator) is recorded in every summary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from eval.inference import (
    Encoder,
    ImageListDataset,
    RerankContext,
    RetrievalSet,
    check_rerank_support,
    declares_rerank,
    inference_on_dataset,
    needs_gallery_state,
    rerank_on_dataset,
)
from eval.metrics import MSD_ORDERS, MsdOrder
from pedes_core.errors import ConfigError

__all__ = [
    "EvalResult",
    "Encoder",
    "Evaluator",
    "ImageListDataset",
    "RerankContext",
    "RetrievalEvaluator",
    "RetrievalSet",
    "check_rerank_support",
]


@dataclass
class EvalResult:
    name: str
    num_queries: int
    num_gallery: int
    t2i: dict[str, Any]
    i2t: dict[str, Any]
    t2i_rerank: dict[str, Any] | None = None
    msd_order: str = "ranked"
    rerank_top_k: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-friendly dict without the CMC curves."""

        def strip(m: dict[str, Any] | None) -> dict[str, Any] | None:
            return None if m is None else {k: float(v) for k, v in m.items() if k != "cmc"}

        return {
            "name": self.name,
            "num_queries": self.num_queries,
            "num_gallery": self.num_gallery,
            "msd_order": self.msd_order,
            "rerank_top_k": self.rerank_top_k,
            "t2i": strip(self.t2i),
            "i2t": strip(self.i2t),
            "t2i_rerank": strip(self.t2i_rerank),
            **self.extra,
        }


class RetrievalEvaluator:
    """Metrics of accumulated features: ``reset`` → ``process_*`` → ``evaluate``; calls no model."""

    def __init__(self, *, msd_order: MsdOrder = "ranked") -> None:
        if msd_order not in MSD_ORDERS:
            raise ConfigError(f"eval.msd_order: expected one of {MSD_ORDERS}, got {msd_order!r}")
        self.msd_order = msd_order
        self.reset()

    def reset(self) -> None:
        self._q_feats: list[torch.Tensor] = []
        self._q_ids: list[np.ndarray] = []
        self._q_tokens: list[torch.Tensor] = []
        self._g_feats: list[torch.Tensor] = []
        self._g_ids: list[np.ndarray] = []
        self._g_state: list[torch.Tensor] = []

    def process_queries(self, features: torch.Tensor, ids: Sequence[int] | np.ndarray,
                        tokens: torch.Tensor | None = None) -> None:
        self._q_feats.append(torch.nn.functional.normalize(features.detach().float(), dim=-1).cpu())
        self._q_ids.append(np.asarray(ids))
        if tokens is not None:
            self._q_tokens.append(tokens.detach().cpu())

    def process_gallery(self, features: torch.Tensor, ids: Sequence[int] | np.ndarray,
                        state: torch.Tensor | None = None) -> None:
        self._g_feats.append(torch.nn.functional.normalize(features.detach().float(), dim=-1).cpu())
        self._g_ids.append(np.asarray(ids))
        if state is not None:
            self._g_state.append(state.detach().cpu())

    def features(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat(self._q_feats), torch.cat(self._g_feats)

    def similarity(self) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        q, g = self.features()
        return q @ g.T, np.concatenate(self._q_ids), np.concatenate(self._g_ids)

    def rerank_context(self, top_k: int, *, device: torch.device | str = "cpu", batch_size: int = 128,
                       amp_dtype: torch.dtype | None = None) -> RerankContext:
        q, g = self.features()
        return RerankContext(
            similarity=q @ g.T,
            query_features=q,
            gallery_features=g,
            query_tokens=_cat_or_none(self._q_tokens, len(q)),
            gallery_state=_cat_or_none(self._g_state, len(g)),
            top_k=top_k,
            device=torch.device(device),
            batch_size=batch_size,
            amp_dtype=amp_dtype,
        )

    def evaluate(self, stage2: torch.Tensor | None = None) -> dict[str, dict[str, Any] | None]:
        """``t2i`` / ``i2t`` metrics of the cosine matrix, ``t2i_rerank`` of ``stage2`` when given."""
        from eval.metrics import retrieval_metrics

        sim, q_ids, g_ids = self.similarity()
        out: dict[str, dict[str, Any] | None] = {
            "t2i": retrieval_metrics(sim, q_ids, g_ids, msd_order=self.msd_order),
            "i2t": retrieval_metrics(sim.T.contiguous(), g_ids, q_ids, msd_order=self.msd_order),
            "t2i_rerank": None,
        }
        if stage2 is not None:
            if tuple(stage2.shape) != tuple(sim.shape):
                raise ValueError(f"stage-2 matrix has shape {tuple(stage2.shape)}, expected {tuple(sim.shape)}")
            out["t2i_rerank"] = retrieval_metrics(stage2, q_ids, g_ids, compute_msd=False)
        return out


def _cat_or_none(parts: list[torch.Tensor], expected: int) -> torch.Tensor | None:
    """Batches joined along dim 0 (token batches of different lengths are zero-padded to the longest)."""
    if not parts:
        return None
    if parts[0].ndim == 2 and len({p.shape[1] for p in parts}) > 1:
        width = max(p.shape[1] for p in parts)
        parts = [torch.nn.functional.pad(p, (0, width - p.shape[1])) for p in parts]
    joined = torch.cat(parts)
    return joined if len(joined) == expected else None


class Evaluator:
    """Inference + metrics for one :class:`RetrievalSet` (``run``); the method's mode is restored.

    Raises:
        ConfigError: ``rerank_top_k > 0`` on a method without a declared re-ranker, or an unknown
            ``msd_order``.
    """

    def __init__(
        self,
        method: Any,
        *,
        tokenizer: Any,
        transform: Any,
        device: torch.device | str = "cpu",
        batch_size: int = 128,
        num_workers: int = 0,
        amp_dtype: torch.dtype | None = None,
        rerank_top_k: int = 0,
        msd_order: MsdOrder = "ranked",
    ) -> None:
        if rerank_top_k < 0:
            raise ConfigError(f"eval.rerank_top_k: expected >= 0, got {rerank_top_k}")
        check_rerank_support(method, rerank_top_k)
        self.method = method
        self.tokenizer = tokenizer
        self.transform = transform
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.amp_dtype = amp_dtype
        self.rerank_top_k = rerank_top_k
        self.metrics = RetrievalEvaluator(msd_order=msd_order)
        #: ``progress(n)`` after each encoded batch (:func:`eval.inference.inference_on_dataset`); None = silent
        self.progress: Callable[[int], None] | None = None

    @property
    def msd_order(self) -> str:
        return self.metrics.msd_order

    @property
    def reranks(self) -> bool:
        return self.rerank_top_k > 0 and declares_rerank(self.method)

    def similarity(self) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """Stage-1 cosine matrix and ids of the last :meth:`run`."""
        return self.metrics.similarity()

    def run(self, data: RetrievalSet) -> EvalResult:
        inference_on_dataset(
            self.method,
            data,
            self.metrics,
            tokenizer=self.tokenizer,
            transform=self.transform,
            device=self.device,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            amp_dtype=self.amp_dtype,
            keep_gallery_state=needs_gallery_state(self.method, self.rerank_top_k),
            progress=self.progress,
        )
        stage2 = None
        if self.reranks:
            context = self.metrics.rerank_context(
                self.rerank_top_k, device=self.device, batch_size=self.batch_size, amp_dtype=self.amp_dtype
            )
            stage2 = rerank_on_dataset(self.method, context)
        metrics = self.metrics.evaluate(stage2)
        return EvalResult(
            data.name,
            len(data.query_texts),
            len(data.gallery_paths),
            metrics["t2i"],
            metrics["i2t"],
            metrics["t2i_rerank"],
            msd_order=self.msd_order,
            rerank_top_k=self.rerank_top_k if self.reranks else 0,
        )
