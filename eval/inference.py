"""Inference for retrieval evaluation (DESIGN.md §6): run an encoder over a split, feed an evaluator.

Following fast-reid's split of ``inference_on_dataset`` (model calls) from the evaluator's
``reset/process/evaluate`` (metrics), this module owns every call into the model:

* :func:`inference_on_dataset` encodes the queries (``encode_text`` on the tokenized captions) and the
  gallery (each image decoded from disk **once**, ``encode_image``) batch by batch and hands the
  features to :class:`eval.evaluator.RetrievalEvaluator`'s ``process_queries``/``process_gallery``.
  When a pairwise stage-2 scorer will run, the same gallery pass also keeps a per-image *gallery
  state*: the encoder's ``rerank_gallery_state(images)`` when it declares one (e.g. encoded tokens),
  else the decoded image tensors themselves. Stage 2 then reads that cache; no image is decoded again.
* :func:`rerank_on_dataset` computes the stage-2 score matrix from a :class:`RerankContext` (the
  already-encoded, L2-normalized features, the stage-1 cosine matrix, the query tokens, the gallery
  state): a list-level re-ranker ``encoder.rerank(context) -> [Q, G]`` (e.g. Sew's visual-neighbour
  re-ranking, which needs nothing but the features), or the pairwise cross-encoder hook
  ``encoder.rerank_scores(query_tokens [P, L], gallery_state [P, ...]) -> [P]`` on each query's
  stage-1 top-K, batched over ``batch_size`` pairs of any queries; the re-scored top-K are placed
  above every other gallery item in re-score order (min-max mapped to ``[ceiling, ceiling + 1]`` per
  query, ``ceiling`` = 1 + the largest stage-1 score).

Gallery-state memory (pairwise scorers without ``rerank_gallery_state``): ``G x 3 x H x W`` float32,
e.g. 1.8 GB for CUHK-PEDES's 3,074 test images at 384x128.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from pedes_core.errors import ConfigError, InputError

if TYPE_CHECKING:  # pragma: no cover
    from eval.evaluator import RetrievalEvaluator


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
    """What the evaluator needs of a model: global embeddings of texts and images (any scale).

    Optional, declared with the class attribute ``supports_rerank = True``: a list-level re-ranker
    ``rerank(context: RerankContext) -> Tensor [Q, G]``, or a pairwise scorer
    ``rerank_scores(query_tokens, gallery_state) -> Tensor [P]`` (with an optional
    ``rerank_gallery_state(images) -> Tensor [B, ...]`` choosing what the gallery pass caches).
    """

    def encode_image(self, images: torch.Tensor) -> torch.Tensor: ...

    def encode_text(self, text_tokens: torch.Tensor) -> torch.Tensor: ...


def declares_rerank(encoder: Any) -> bool:
    """Whether ``encoder`` declares a stage-2 re-ranker (``supports_rerank`` and a hook)."""
    if not bool(getattr(encoder, "supports_rerank", False)):
        return False
    return callable(getattr(encoder, "rerank", None)) or callable(getattr(encoder, "rerank_scores", None))


def check_rerank_support(encoder: Any, rerank_top_k: int) -> None:
    """``rerank_top_k > 0`` on an encoder without a declared re-ranker is a configuration error."""
    if rerank_top_k > 0 and not declares_rerank(encoder):
        name = getattr(encoder, "method_name", type(encoder).__name__)
        raise ConfigError(
            f"eval.rerank_top_k: {rerank_top_k} asks for test-time re-ranking, but method {name!r} has no "
            "re-ranker (supports_rerank is not set); set eval.rerank_top_k: 0"
        )


def _is_list_level(encoder: Any) -> bool:
    return callable(getattr(encoder, "rerank", None))


def needs_gallery_state(encoder: Any, rerank_top_k: int) -> bool:
    """A pairwise stage-2 scorer reads a per-image gallery cache; a list-level re-ranker does not."""
    return rerank_top_k > 0 and declares_rerank(encoder) and not _is_list_level(encoder)


def autocast_context(device: torch.device, amp_dtype: torch.dtype | None):
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=amp_dtype)


@dataclass
class RerankContext:
    """Everything stage 2 may use, already computed by the stage-1 pass (CPU tensors).

    ``similarity`` is the stage-1 cosine matrix ``[Q, G]`` of the L2-normalized features;
    ``gallery_state`` is the gallery cache (``None`` for list-level re-rankers).
    """

    similarity: torch.Tensor
    query_features: torch.Tensor
    gallery_features: torch.Tensor
    query_tokens: torch.Tensor | None
    gallery_state: torch.Tensor | None
    top_k: int
    device: torch.device
    batch_size: int = 128
    amp_dtype: torch.dtype | None = None

    def autocast(self):
        return autocast_context(self.device, self.amp_dtype)


@torch.no_grad()
def inference_on_dataset(
    encoder: Any,
    data: RetrievalSet,
    evaluator: RetrievalEvaluator,
    *,
    tokenizer: Callable[[list[str]], torch.Tensor],
    transform: Any,
    device: torch.device | str = "cpu",
    batch_size: int = 128,
    num_workers: int = 0,
    amp_dtype: torch.dtype | None = None,
    keep_gallery_state: bool = False,
    progress: Callable[[int], None] | None = None,
) -> RetrievalEvaluator:
    """Encode ``data`` with ``encoder`` (eval mode, mode restored) into ``evaluator`` (reset first).

    ``progress(n)`` is called after each batch with the number of items (texts, then images) it held;
    a run encodes ``len(data.query_texts) + len(data.gallery_paths)`` items in all."""
    device = torch.device(device)
    was_training = bool(getattr(encoder, "training", False))
    if hasattr(encoder, "eval"):
        encoder.eval()
    state_fn = getattr(encoder, "rerank_gallery_state", None) if keep_gallery_state else None
    try:
        evaluator.reset()
        for start in range(0, len(data.query_texts), batch_size):
            tokens = tokenizer(data.query_texts[start : start + batch_size])
            with autocast_context(device, amp_dtype):
                feats = encoder.encode_text(tokens.to(device))
            evaluator.process_queries(feats, data.query_ids[start : start + batch_size], tokens)
            if progress is not None:
                progress(len(tokens))
        loader = DataLoader(
            ImageListDataset(data.gallery_paths, transform, data.image_root),
            batch_size=batch_size,
            num_workers=num_workers,
        )
        offset = 0
        for images in loader:
            on_device = images.to(device)
            with autocast_context(device, amp_dtype):
                feats = encoder.encode_image(on_device)
                state = None
                if keep_gallery_state:
                    state = state_fn(on_device).detach().cpu() if callable(state_fn) else images
            evaluator.process_gallery(feats, data.gallery_ids[offset : offset + len(images)], state)
            offset += len(images)
            if progress is not None:
                progress(len(images))
        return evaluator
    finally:
        if hasattr(encoder, "train"):
            encoder.train(was_training)


@torch.no_grad()
def pairwise_rerank(scorer: Callable[[torch.Tensor, torch.Tensor], torch.Tensor | None],
                    context: RerankContext) -> torch.Tensor:
    """Stage-2 matrix from a pairwise scorer on each query's stage-1 top-K (see the module docstring)."""
    if context.query_tokens is None or context.gallery_state is None:
        raise ConfigError("pairwise re-ranking needs the query tokens and the gallery cache of the stage-1 pass")
    sim = context.similarity
    k = min(context.top_k, sim.shape[1])
    top = sim.topk(k, dim=1).indices  # [Q, K]
    q_index = torch.arange(sim.shape[0])[:, None].expand_as(top).reshape(-1)
    g_index = top.reshape(-1)
    scores = torch.empty(len(g_index), dtype=torch.float32)
    for start in range(0, len(g_index), context.batch_size):
        qi, gi = q_index[start : start + context.batch_size], g_index[start : start + context.batch_size]
        with context.autocast():
            out = scorer(context.query_tokens[qi].to(context.device), context.gallery_state[gi].to(context.device))
        if out is None:
            raise ConfigError("the method declares supports_rerank but its rerank_scores returned None")
        scores[start : start + len(gi)] = out.float().reshape(-1).cpu()
    scores = scores.view(-1, k)
    low = scores.min(dim=1, keepdim=True).values
    span = (scores.max(dim=1, keepdim=True).values - low).clamp_min(1e-12)
    stage2 = sim.clone()
    ceiling = float(sim.max()) + 1.0
    stage2.scatter_(1, top, ceiling + (scores - low) / span)
    return stage2


@torch.no_grad()
def rerank_on_dataset(encoder: Any, context: RerankContext) -> torch.Tensor:
    """Stage-2 score matrix ``[Q, G]`` (larger = better) from the encoder's declared re-ranker."""
    if not declares_rerank(encoder):
        check_rerank_support(encoder, max(context.top_k, 1))
    was_training = bool(getattr(encoder, "training", False))
    if hasattr(encoder, "eval"):
        encoder.eval()
    try:
        if _is_list_level(encoder):
            out = encoder.rerank(context)
        else:
            out = pairwise_rerank(encoder.rerank_scores, context)
    finally:
        if hasattr(encoder, "train"):
            encoder.train(was_training)
    out = out.detach().float().cpu()
    if tuple(out.shape) != tuple(context.similarity.shape):
        raise ValueError(f"re-ranker returned shape {tuple(out.shape)}, expected {tuple(context.similarity.shape)}")
    return out
