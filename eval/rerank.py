r"""Re-ranking by visual neighbours (NAFS), the test-time post-processing seed 003 §4.1 applies.

Seed 003 (Sew + MCM) says only "we apply a re-ranking post-processing approach to improve search
performance following NAFS [11]" and reports both numbers (Tables 1-3, "R"). NAFS (Gao et al. 2021,
"Contextual Non-Local Alignment over Full-Scale Representation for Text-Based Person Search") calls
it re-ranking by visual neighbours; its public code (``utils/metric.py``, ``topk`` with ``reid_sim``)
refines a similarity by the Jaccard similarity of two top-K neighbour sets. Our reading, for
text-to-image retrieval with text query :math:`T_q` and gallery image :math:`I_g`:

.. math::

    \mathcal{N}(T_q, K) = \text{top-}K\text{ gallery images of } T_q \text{ by } S(T_q, \cdot),\qquad
    \mathcal{N}(I_g, K) = \text{top-}K\text{ gallery images of } I_g \text{ by image-image cosine},

    S'(T_q, I_g) = S(T_q, I_g) + \frac{|\mathcal{N}(T_q, K)\cap\mathcal{N}(I_g, K)|}
                                      {|\mathcal{N}(T_q, K)\cup\mathcal{N}(I_g, K)|}

Declared choices (the NAFS paper text was not available to us; these follow its public code where it
is coherent):

1. Both neighbourhoods are sets of *gallery images* ("visual neighbours"), so the Jaccard term compares
   like with like. The public code's text-to-image path builds the text-side set from its
   image-to-text ranking (text indices) and compares it with image indices; we do not follow that.
2. :math:`\mathcal{N}(I_g, K)` includes :math:`I_g` itself (its own nearest neighbour at cosine 1,
   as the public code's image-image matrix includes the diagonal).
3. :math:`S'` is computed for every gallery image, not only the top-K (the Jaccard term is 0 for an
   image whose neighbours miss the query's top-K, so those keep their stage-1 score), with weight 1
   on the Jaccard term as in the public code. ``K`` is ``eval.rerank_top_k`` (the public code fixes
   ``K = 5``).
4. :math:`S` is the cosine of the L2-normalized global features (Sew has no local-alignment score
   to add, unlike NAFS's global + local sum).

Ties in the top-K (equal scores) are broken by ``torch.topk``. Cost: the image kNN needs
``G x G`` similarities, computed ``chunk`` rows at a time; the intersections are one sparse
``G x G`` (``G*K`` non-zeros) by dense ``G x chunk`` product per query chunk, so memory stays
``O((Q + G) * chunk)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_CHUNK = 1024


def _top_k_rows(a: torch.Tensor, b: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Indices ``[len(a), k]`` of the ``k`` columns of ``a @ b.T`` with the largest values, by row chunks."""
    out = [(a[i : i + chunk] @ b.T).topk(k, dim=1).indices for i in range(0, len(a), chunk)]
    return torch.cat(out) if out else torch.zeros(0, k, dtype=torch.long, device=a.device)


@torch.no_grad()
def visual_neighbour_rerank(
    similarity: torch.Tensor,
    gallery_features: torch.Tensor,
    k: int,
    *,
    chunk: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Stage-2 scores ``S + Jaccard(N(T, K), N(I, K))`` (module docstring) as a ``[Q, G]`` float32 matrix.

    Args:
        similarity: ``[Q, G]`` stage-1 text-to-image scores (cosines).
        gallery_features: ``[G, D]`` gallery image features (normalized here).
        k: neighbourhood size ``K >= 1`` (capped at ``G``).
        chunk: rows per block of the ``G x G`` image similarity and of the query loop.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    sim = similarity.float()
    num_gallery = sim.shape[1]
    if gallery_features.shape[0] != num_gallery:
        raise ValueError(f"{gallery_features.shape[0]} gallery features for {num_gallery} similarity columns")
    k = min(k, num_gallery)
    device = sim.device
    g = F.normalize(gallery_features.float().to(device), dim=-1)
    image_neighbours = _top_k_rows(g, g, k, chunk)  # [G, K]: N(I_g, K), row g
    # Sparse membership B[g, j] = 1 iff j ∈ N(I_g, K); inter[q, g] = Σ_j A[q, j] B[g, j].
    rows = torch.arange(num_gallery, device=device)[:, None].expand_as(image_neighbours).reshape(-1)
    membership = torch.sparse_coo_tensor(
        torch.stack([rows, image_neighbours.reshape(-1)]),
        torch.ones(rows.numel(), device=device),
        (num_gallery, num_gallery),
        check_invariants=False,  # indices built in range above
    ).coalesce()
    out = torch.empty_like(sim)
    for start in range(0, sim.shape[0], chunk):
        block = sim[start : start + chunk]
        text_neighbours = block.topk(k, dim=1).indices  # N(T_q, K)
        query_sets = torch.zeros_like(block).scatter_(1, text_neighbours, 1.0)  # [c, G] one-hot
        inter = torch.sparse.mm(membership, query_sets.T).T  # [c, G]
        jaccard = inter / (2.0 * k - inter)
        out[start : start + chunk] = block + jaccard
    return out
