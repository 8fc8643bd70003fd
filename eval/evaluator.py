"""Retrieval evaluation of a trained method (DESIGN.md §6), fast-reid style ``reset/process/evaluate``.

Queries (captions) are encoded with ``method.encode_text`` and the gallery (images) with
``method.encode_image`` in batches, features are L2-normalized and the cosine similarity matrix goes
to :func:`eval.metrics.retrieval_metrics` (R1/R5/R10, mAP, mINP, mSD in percent): text-to-image with
the captions as queries, image-to-text with the transposed matrix.

Re-ranking hook (stage 2, used by BDAM): when ``rerank_top_k > 0`` and the method overrides
``rerank_scores``, the top-K gallery images of each query are re-scored with
``method.rerank_scores(query_tokens [P, L], gallery_images [P, 3, H, W]) -> [P]`` (one score per
pair; choice: pairs, so a method can batch any mix of queries). Re-scored entries are placed above all
others in rerank-score order; both stages are reported (``t2i`` = stage 1, ``t2i_rerank`` = stage 2).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from pedes_core.errors import InputError


@dataclass
class RetrievalSet:
    """One evaluation split: captions (queries) and distinct images (gallery) with identity ids."""

    name: str
    query_texts: list[str]
    query_ids: np.ndarray
    gallery_paths: list[str]
    gallery_ids: np.ndarray
    image_root: str | None = None  # gallery paths are relative to it when set

    def __post_init__(self) -> None:
        if len(self.query_texts) != len(self.query_ids) or len(self.gallery_paths) != len(self.gallery_ids):
            raise ValueError(f"{self.name}: texts/ids or paths/ids differ in length")
        if not self.query_texts or not self.gallery_paths:
            raise InputError(f"{self.name}: empty evaluation split (no queries or no gallery images)")


@dataclass
class EvalResult:
    name: str
    num_queries: int
    num_gallery: int
    t2i: dict[str, Any]
    i2t: dict[str, Any]
    t2i_rerank: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-friendly dict without the CMC curves."""

        def strip(m: dict[str, Any] | None) -> dict[str, Any] | None:
            return None if m is None else {k: float(v) for k, v in m.items() if k != "cmc"}

        return {
            "name": self.name,
            "num_queries": self.num_queries,
            "num_gallery": self.num_gallery,
            "t2i": strip(self.t2i),
            "i2t": strip(self.i2t),
            "t2i_rerank": strip(self.t2i_rerank),
            **self.extra,
        }


class ImageListDataset(Dataset):
    """Gallery images through the test transform."""

    def __init__(self, paths: Sequence[str], transform: Any, root: str | None = None) -> None:
        self.paths = list(paths)
        self.transform = transform
        self.root = Path(root) if root else None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        path = self.root / self.paths[i] if self.root else Path(self.paths[i])
        try:
            with Image.open(path) as im:
                return self.transform(im.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot read gallery image ({exc})") from None


class Encoder(Protocol):
    """What the evaluator needs of a model: global embeddings of texts and images (any scale)."""

    def encode_image(self, images: torch.Tensor) -> torch.Tensor: ...

    def encode_text(self, text_tokens: torch.Tensor) -> torch.Tensor: ...


def _overrides_rerank(method: Any) -> bool:
    """A model declares a stage-2 scorer with ``supports_rerank = True`` and ``rerank_scores``."""
    return bool(getattr(method, "supports_rerank", False)) and callable(getattr(method, "rerank_scores", None))


class Evaluator:
    """Accumulate query/gallery features (``process_*``), then ``evaluate()``; or :meth:`run` a set."""

    def __init__(
        self,
        method: torch.nn.Module,
        *,
        tokenizer: Any,
        transform: Any,
        device: torch.device | str = "cpu",
        batch_size: int = 128,
        num_workers: int = 0,
        amp_dtype: torch.dtype | None = None,
        rerank_top_k: int = 0,
    ) -> None:
        self.method = method
        self.tokenizer = tokenizer
        self.transform = transform
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.amp_dtype = amp_dtype
        self.rerank_top_k = rerank_top_k
        self.reset()

    def reset(self) -> None:
        self._q_feats: list[torch.Tensor] = []
        self._q_ids: list[np.ndarray] = []
        self._g_feats: list[torch.Tensor] = []
        self._g_ids: list[np.ndarray] = []

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    @torch.no_grad()
    def process_queries(self, text_tokens: torch.Tensor, ids: Sequence[int] | np.ndarray) -> None:
        with self._autocast():
            feats = self.method.encode_text(text_tokens.to(self.device))
        self._q_feats.append(torch.nn.functional.normalize(feats.float(), dim=-1).cpu())
        self._q_ids.append(np.asarray(ids))

    @torch.no_grad()
    def process_gallery(self, images: torch.Tensor, ids: Sequence[int] | np.ndarray) -> None:
        with self._autocast():
            feats = self.method.encode_image(images.to(self.device))
        self._g_feats.append(torch.nn.functional.normalize(feats.float(), dim=-1).cpu())
        self._g_ids.append(np.asarray(ids))

    def similarity(self) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        q = torch.cat(self._q_feats)
        g = torch.cat(self._g_feats)
        return q @ g.T, np.concatenate(self._q_ids), np.concatenate(self._g_ids)

    def evaluate(self) -> dict[str, dict[str, Any]]:
        from eval.metrics import retrieval_metrics

        sim, q_ids, g_ids = self.similarity()
        return {
            "t2i": retrieval_metrics(sim, q_ids, g_ids),
            "i2t": retrieval_metrics(sim.T.contiguous(), g_ids, q_ids),
        }

    # --- whole split ---------------------------------------------------------------------------
    def run(self, data: RetrievalSet) -> EvalResult:
        """Encode and evaluate one :class:`RetrievalSet` (method put in eval mode, mode restored)."""
        was_training = self.method.training
        self.method.eval()
        try:
            self.reset()
            for start in range(0, len(data.query_texts), self.batch_size):
                texts = data.query_texts[start : start + self.batch_size]
                self.process_queries(self.tokenizer(texts), data.query_ids[start : start + self.batch_size])
            loader = DataLoader(
                ImageListDataset(data.gallery_paths, self.transform, data.image_root),
                batch_size=self.batch_size,
                num_workers=self.num_workers,
            )
            offset = 0
            for images in loader:
                self.process_gallery(images, data.gallery_ids[offset : offset + len(images)])
                offset += len(images)
            metrics = self.evaluate()
            result = EvalResult(data.name, len(data.query_texts), len(data.gallery_paths), metrics["t2i"], metrics["i2t"])
            if self.rerank_top_k > 0 and _overrides_rerank(self.method):
                result.t2i_rerank = self._rerank(data)
            return result
        finally:
            self.method.train(was_training)

    @torch.no_grad()
    def _rerank(self, data: RetrievalSet) -> dict[str, Any]:
        from eval.metrics import retrieval_metrics

        sim, q_ids, g_ids = self.similarity()
        k = min(self.rerank_top_k, sim.shape[1])
        top = sim.topk(k, dim=1).indices
        images = ImageListDataset(data.gallery_paths, self.transform, data.image_root)
        reranked = sim.clone()
        ceiling = float(sim.max()) + 1.0
        for q in range(sim.shape[0]):
            tokens = self.tokenizer([data.query_texts[q]]).expand(k, -1).to(self.device)
            gallery = torch.stack([images[int(j)] for j in top[q]]).to(self.device)
            with self._autocast():
                scores = self.method.rerank_scores(tokens, gallery)
            if scores is None:
                return retrieval_metrics(sim, q_ids, g_ids, compute_msd=False)
            scores = scores.float().cpu().reshape(-1)
            span = (scores.max() - scores.min()).clamp_min(1e-12)
            reranked[q, top[q]] = ceiling + (scores - scores.min()) / span
        # re-ranked scores are no cosine similarities: no mSD for stage 2
        return retrieval_metrics(reranked, q_ids, g_ids, compute_msd=False)
