"""Style clustering (seed 000 §3.3 and Table 4): DBSCAN with a k-distance-knee eps (the paper's
choice), HDBSCAN, and KMeans + uniform prototype sampling (the HAM recipe), then stabilization.

Pipeline (all deterministic for ``seed``):

1. :func:`reduce_dims` — PCA to ``n_components`` (~50) on the L2-normalized feature vectors.
   Density methods need it: scikit-learn's DBSCAN falls back to brute force on raw 512-d vectors and
   hdbscan above ~50 dimensions is very slow; in 50-d tree-based neighbour search works. For unit
   vectors a cosine eps ``c`` equals a Euclidean eps ``sqrt(2c)`` (:func:`cosine_to_euclidean_eps`).
2. One of :func:`fit_dbscan`, :func:`fit_hdbscan`, :func:`fit_kmeans_ups`. Density methods are *fitted*
   on at most ``max_fit_points`` points (a seeded random sample) and the remaining points are then
   labelled from the fit: DBSCAN gives a point the label of its nearest core point when it is within
   eps (DBSCAN's own border-point rule), else noise; HDBSCAN uses ``hdbscan.approximate_predict``.
   Choice: this bounds memory (DBSCAN keeps every eps-neighbourhood list; no n×n matrix is ever built)
   and time at 200k texts; below ``max_fit_points`` the fit is exact.
3. :func:`stabilize` — "reassign noise points and merge small clusters" (seed 000 §3.3): noise points go
   to the nearest cluster centroid; clusters smaller than ``min_size`` are merged, smallest first, into
   the cluster with the nearest centroid; clusters are renumbered by size (largest = 0).
4. :func:`merge_indistinct` — over-split clusters whose *style profiles* cannot be told apart are merged
   (choice; the paper's "merge small clusters" only handles size). A cluster's profile is the mean of
   its members' stylometric features z-scored against the whole corpus; the distance of two profiles
   is the root mean square of their difference (in corpus standard deviations). Closest pair first
   (average-linkage on the profiles, sizes as weights), while the distance is below
   ``profile_distance``. Density methods split one style along any gap in the space (an optional
   clause, a second opener, a sentence pool with or without "you"); sub-clusters of one style then
   differ in a few features (measured on the test and benchmark generators: RMS 0.02–0.46 over the 24
   features), while different styles differ in many (RMS ≥ 0.84 there); the default threshold 0.6
   (``merge.profile_distance``) sits between. The build's second rule (identical or near-identical style prompts) lives in
   :mod:`caption_gen.styles.build`, which uses :func:`merge_pair`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import pairwise_distances_argmin_min, silhouette_score
from sklearn.neighbors import NearestNeighbors

NOISE = -1


def cosine_to_euclidean_eps(cosine_eps: float) -> float:
    """For unit vectors ``||a-b||² = 2(1-cos)``: a cosine-distance eps ``c`` is a Euclidean eps ``√(2c)``."""
    return math.sqrt(2.0 * cosine_eps)


def reduce_dims(x: np.ndarray, n_components: int | None, seed: int) -> tuple[np.ndarray, PCA | None]:
    """PCA to ``n_components`` (skipped when ``None``/0 or when the data already has few dimensions)."""
    n, d = x.shape
    if not n_components or d <= n_components or n <= n_components:
        return x.astype(np.float32, copy=False), None
    pca = PCA(n_components=n_components, svd_solver="randomized", random_state=seed)
    return pca.fit_transform(x).astype(np.float32), pca


def auto_min_samples(n: int) -> int:
    """Default DBSCAN ``min_samples``: ``round(2·ln n)`` clipped to [4, 25] (small inputs stay clusterable)."""
    return int(np.clip(round(2.0 * math.log(max(n, 2))), 4, 25))


def auto_min_cluster_size(n: int, share: float = 0.01, floor: int = 5) -> int:
    """Smallest cluster kept by stabilization: ``max(floor, share·n)``."""
    return max(floor, int(math.ceil(share * n)))


def knee_index(values: np.ndarray, *, min_strength: float = 0.25, fallback_quantile: float = 0.95) -> tuple[int, bool]:
    """Knee of an ascending k-distance curve (Kneedle, Satopää et al. 2011): after scaling both axes
    to [0, 1], the point farthest below the diagonal, ``argmax(x - y)``.

    Choice (the paper only says "DBSCAN"): a knee counts only when it is pronounced, i.e. its distance
    below the diagonal ``max(x - y)`` is at least ``min_strength``; a curve without a clear knee (no
    noise tail — every point sits in some cluster, or densities differ cluster by cluster, which gives
    a staircase) falls back to the ``fallback_quantile`` of the curve, so that nearly all points are
    core points and clusters stay separated by their gaps. Returns ``(index, found_knee)``.
    """
    y = np.asarray(values, dtype=np.float64)
    fallback = int(round(fallback_quantile * (y.size - 1))) if y.size else 0
    if y.size < 3:
        return max(0, y.size - 1), False
    span = y[-1] - y[0]
    if span <= 0:
        return fallback, False
    x = np.linspace(0.0, 1.0, y.size)
    diff = x - (y - y[0]) / span
    i = int(np.argmax(diff))
    if diff[i] >= min_strength:
        return i, True
    return fallback, False


def k_distances(z: np.ndarray, k: int, *, sample: int, seed: int) -> np.ndarray:
    """Sorted distances to the k-th neighbour (the point itself counts, as in DBSCAN's ``min_samples``)
    for up to ``sample`` query points drawn from ``z``; tree-based search, no n×n matrix."""
    rng = np.random.default_rng(seed)
    q = z if len(z) <= sample else z[np.sort(rng.choice(len(z), sample, replace=False))]
    k = min(k, len(z))
    nn = NearestNeighbors(n_neighbors=k).fit(z)
    dist, _ = nn.kneighbors(q)
    return np.sort(dist[:, -1])


def knee_eps(z: np.ndarray, k: int, *, sample: int = 20000, seed: int = 0) -> tuple[float, np.ndarray, bool]:
    """DBSCAN eps from the knee of the sorted k-distance curve (:func:`knee_index`).
    Returns ``(eps, curve, found_knee)``."""
    curve = k_distances(z, k, sample=sample, seed=seed)
    # Exact duplicates (common after neutralization: one template, many texts) give k-distances of ~0
    # that would pull the knee to ~0; the knee is searched on the positive part of the curve only.
    positive = curve[curve > 1e-4 * max(float(curve[-1]), 1e-12)] if curve.size else curve
    use = positive if positive.size >= 3 else curve
    idx, found = knee_index(use)
    eps = float(use[idx])
    if eps <= 0:  # many duplicates: fall back to the smallest positive k-distance
        pos = curve[curve > 0]
        eps = float(pos[0]) if pos.size else 1e-6
    return eps, curve, found


def _fit_subset(n: int, max_fit: int, seed: int) -> np.ndarray | None:
    if n <= max_fit:
        return None
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, max_fit, replace=False))


@dataclass
class FitResult:
    labels: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def fit_dbscan(
    z: np.ndarray, *, eps: float | None = None, min_samples: int | None = None, max_fit_points: int = 30000,
    knee_sample: int = 20000, seed: int = 0,
) -> FitResult:
    """DBSCAN (seed 000's choice) with eps from the k-distance knee unless given."""
    from sklearn.cluster import DBSCAN

    n = len(z)
    subset = _fit_subset(n, max_fit_points, seed)
    fit = z if subset is None else z[subset]
    ms = min_samples or auto_min_samples(len(fit))
    curve = None
    if eps is None:
        eps_used, curve, found = knee_eps(fit, ms, sample=knee_sample, seed=seed)
        eps_source = "knee" if found else "k-distance quantile (no clear knee)"
    else:
        eps_used, eps_source = float(eps), "given"
    model = DBSCAN(eps=eps_used, min_samples=ms, algorithm="auto", n_jobs=1).fit(fit)
    if subset is None:
        labels = model.labels_.astype(np.int64)
    else:
        labels = np.full(n, NOISE, np.int64)
        labels[subset] = model.labels_
        rest = np.setdiff1d(np.arange(n), subset, assume_unique=True)
        core = model.core_sample_indices_
        if core.size:
            nn = NearestNeighbors(n_neighbors=1).fit(fit[core])
            dist, idx = nn.kneighbors(z[rest])
            near = model.labels_[core[idx[:, 0]]]
            labels[rest] = np.where(dist[:, 0] <= eps_used, near, NOISE)
    params = {"eps": eps_used, "eps_source": eps_source, "min_samples": ms, "fit_points": len(fit)}
    extra = {"k_distance_curve": _thin(curve)} if curve is not None else {}
    return FitResult(labels, params, extra)


def fit_hdbscan(
    z: np.ndarray, *, min_cluster_size: int | None = None, min_samples: int | None = None,
    max_fit_points: int = 20000, seed: int = 0,
) -> FitResult:
    """HDBSCAN (the ``hdbscan`` package, Boruvka KD-tree) fitted on ≤ ``max_fit_points`` points."""
    import hdbscan

    n = len(z)
    subset = _fit_subset(n, max_fit_points, seed)
    fit = z if subset is None else z[subset]
    mcs = min_cluster_size or auto_min_cluster_size(len(fit))
    ms = min_samples or auto_min_samples(len(fit))
    model = hdbscan.HDBSCAN(
        min_cluster_size=mcs, min_samples=ms, prediction_data=subset is not None, core_dist_n_jobs=1
    ).fit(fit.astype(np.float64))
    if subset is None:
        labels = model.labels_.astype(np.int64)
    else:
        labels = np.full(n, NOISE, np.int64)
        labels[subset] = model.labels_
        rest = np.setdiff1d(np.arange(n), subset, assume_unique=True)
        pred, _ = hdbscan.approximate_predict(model, z[rest].astype(np.float64))
        labels[rest] = pred
    return FitResult(labels, {"min_cluster_size": mcs, "min_samples": ms, "fit_points": len(fit)})


def choose_k(z: np.ndarray, k_range: tuple[int, int], *, sample: int, seed: int) -> tuple[int, dict[int, float]]:
    """KMeans k with the best silhouette (on a sample) in ``k_range`` (inclusive)."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    s = z if len(z) <= sample else z[np.sort(rng.choice(len(z), sample, replace=False))]
    scores: dict[int, float] = {}
    for k in range(max(2, k_range[0]), min(k_range[1], len(s) - 1) + 1):
        lab = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(s)
        if len(set(lab.tolist())) > 1:
            scores[k] = float(silhouette_score(s, lab, random_state=seed))
    if not scores:
        return 1, scores
    return max(scores, key=lambda k: (scores[k], -k)), scores


def uniform_prototypes(
    z: np.ndarray, labels: np.ndarray, per_cluster: int, beta: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform prototype sampling (HAM): for each cluster draw ``per_cluster`` new centers uniformly in
    the box ``μ ± β·σ`` (per-dimension mean and standard deviation of its members).
    Returns ``(prototypes, parent_cluster)``."""
    protos, parents = [], []
    for c in sorted(set(labels.tolist()) - {NOISE}):
        members = z[labels == c]
        mu, sd = members.mean(axis=0), members.std(axis=0)
        for _ in range(per_cluster):
            protos.append(rng.uniform(mu - beta * sd, mu + beta * sd).astype(np.float32))
            parents.append(c)
    if not protos:
        return np.zeros((0, z.shape[1]), np.float32), np.zeros(0, np.int64)
    return np.stack(protos), np.asarray(parents, np.int64)


def fit_kmeans_ups(
    z: np.ndarray, *, n_clusters: int | None = None, k_range: tuple[int, int] = (2, 12), ups_per_cluster: int = 1,
    ups_beta: float = 0.5, max_fit_points: int = 30000, silhouette_sample: int = 3000, seed: int = 0,
) -> FitResult:
    """KMeans (k given, or chosen by silhouette) plus uniform prototype sampling; every point is then
    assigned to its nearest center among the KMeans centers and the sampled prototypes (HAM's finer
    style prototypes). Prototypes that win no point vanish."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    scores: dict[int, float] = {}
    k = n_clusters
    if k is None:
        k, scores = choose_k(z, k_range, sample=silhouette_sample, seed=seed)
    k = max(1, min(k, len(z)))
    subset = _fit_subset(len(z), max_fit_points, seed)
    fit = z if subset is None else z[subset]
    km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(fit)
    base = km.predict(z)
    protos, parents = uniform_prototypes(z, base, ups_per_cluster, ups_beta, rng)
    centers = np.concatenate([km.cluster_centers_.astype(np.float32), protos]) if len(protos) else km.cluster_centers_
    labels, _ = pairwise_distances_argmin_min(z, centers)
    params = {"k": int(k), "k_source": "given" if n_clusters else "silhouette", "ups_per_cluster": ups_per_cluster,
              "ups_beta": ups_beta, "centers": int(len(centers)), "fit_points": len(fit)}
    extra = {"k_silhouette": {str(kk): v for kk, v in scores.items()},
             "prototype_parent": [int(p) for p in parents]}
    return FitResult(labels.astype(np.int64), params, extra)


def _centroids(z: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids = np.array(sorted(set(labels.tolist()) - {NOISE}), np.int64)
    sums = np.zeros((len(ids), z.shape[1]), np.float64)
    pos = np.searchsorted(ids, labels[labels != NOISE])
    np.add.at(sums, pos, z[labels != NOISE])
    counts = np.bincount(pos, minlength=len(ids)).astype(np.int64)
    return ids, sums / np.maximum(counts, 1)[:, None], counts


def stabilize(z: np.ndarray, labels: np.ndarray, *, min_size: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Reassign noise to the nearest centroid, merge clusters below ``min_size`` into the nearest one
    (smallest first), renumber by size (ties: first member's index). Returns ``(labels, info)``."""
    labels = np.asarray(labels, np.int64).copy()
    n = len(labels)
    info: dict[str, Any] = {
        "noise_share_before": float(np.mean(labels == NOISE)) if n else 0.0,
        "clusters_before": len(set(labels.tolist()) - {NOISE}),
        "merged": [],
    }
    if n == 0:
        return labels, info
    if info["clusters_before"] == 0:  # all noise: one style (documented choice)
        labels[:] = 0
        info["all_noise"] = True
    noise = labels == NOISE
    if noise.any():
        ids, cents, _ = _centroids(z, labels)
        nearest, _ = pairwise_distances_argmin_min(z[noise], cents.astype(z.dtype))
        labels[noise] = ids[nearest]
    info["noise_reassigned"] = int(noise.sum())
    ids, cents, counts = _centroids(z, labels)
    alive = dict(zip(ids.tolist(), range(len(ids)), strict=True))
    cents = cents.copy()
    counts = counts.copy()
    while len(alive) > 1:
        small = min(alive, key=lambda c: (counts[alive[c]], c))
        if counts[alive[small]] >= min_size:
            break
        others = [c for c in alive if c != small]
        d = np.linalg.norm(cents[[alive[c] for c in others]] - cents[alive[small]], axis=1)
        target = others[int(np.argmin(d))]
        i, j = alive[small], alive[target]
        cents[j] = (cents[j] * counts[j] + cents[i] * counts[i]) / (counts[j] + counts[i])
        counts[j] += counts[i]
        labels[labels == small] = target
        info["merged"].append({"from": int(small), "into": int(target), "size": int(counts[i])})
        del alive[small]
    # renumber by size descending, ties by first occurrence
    uniq, first, cnt = np.unique(labels, return_index=True, return_counts=True)
    order = sorted(range(len(uniq)), key=lambda i: (-cnt[i], first[i]))
    mapping = np.empty(uniq.max() + 1, np.int64)
    for new, i in enumerate(order):
        mapping[uniq[i]] = new
    labels = mapping[labels]
    info["clusters_after"] = len(uniq)
    info["sizes"] = [int(cnt[i]) for i in order]
    return labels, info


def renumber_by_size(labels: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Labels 0..k-1 by size descending (ties: first member's index); returns ``(labels, sizes)``."""
    labels = np.asarray(labels, np.int64)
    if labels.size == 0:
        return labels.copy(), []
    uniq, first, cnt = np.unique(labels, return_index=True, return_counts=True)
    order = sorted(range(len(uniq)), key=lambda i: (-cnt[i], first[i]))
    mapping = np.empty(int(uniq.max()) + 1, np.int64)
    for new, i in enumerate(order):
        mapping[uniq[i]] = new
    return mapping[labels], [int(cnt[i]) for i in order]


def merge_pair(labels: np.ndarray, a: int, b: int) -> np.ndarray:
    """Labels with cluster ``b`` folded into cluster ``a`` (then renumbered by size)."""
    out = np.asarray(labels, np.int64).copy()
    out[out == b] = a
    return renumber_by_size(out)[0]


def profile_distance_matrix(profiles: np.ndarray) -> np.ndarray:
    """RMS difference between every two profile rows (in corpus standard deviations)."""
    diff = profiles[:, None, :] - profiles[None, :, :]
    return np.sqrt(np.mean(diff**2, axis=2))


def merge_indistinct(
    labels: np.ndarray, profile_features: np.ndarray, *, profile_distance: float
) -> tuple[np.ndarray, dict[str, Any]]:
    """Merge clusters whose style profiles are closer than ``profile_distance`` (see module docstring).

    ``profile_features``: ``(n, d)`` per-text features already z-scored against the corpus.
    Returns ``(labels renumbered by size, info)``; ``info["merged"]`` lists each merge with its
    distance, ``info["min_distance_after"]`` the closest remaining pair."""
    labels = np.asarray(labels, np.int64).copy()
    info: dict[str, Any] = {"rule": f"style-profile RMS distance < {profile_distance}",
                            "clusters_before": int(len(set(labels.tolist()))), "merged": []}
    ids = sorted(set(labels.tolist()))
    feats = np.asarray(profile_features, np.float64)
    prof = {c: feats[labels == c].mean(axis=0) for c in ids}
    size = {c: int((labels == c).sum()) for c in ids}
    min_after = None
    while len(prof) > 1:
        keys = list(prof)
        d = profile_distance_matrix(np.stack([prof[c] for c in keys]))
        np.fill_diagonal(d, np.inf)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        dist = float(d[i, j])
        if not profile_distance or dist >= profile_distance:
            min_after = dist
            break
        a, b = (keys[i], keys[j]) if size[keys[i]] >= size[keys[j]] else (keys[j], keys[i])
        prof[a] = (prof[a] * size[a] + prof[b] * size[b]) / (size[a] + size[b])
        size[a] += size[b]
        labels[labels == b] = a
        info["merged"].append({"from": int(b), "into": int(a), "distance": round(dist, 4), "size": size[b]})
        del prof[b], size[b]
    labels, sizes = renumber_by_size(labels)
    info.update(clusters_after=len(sizes), sizes=sizes, min_distance_after=min_after)
    return labels, info


def silhouette_sampled(z: np.ndarray, labels: np.ndarray, *, sample: int = 5000, seed: int = 0) -> float | None:
    """Silhouette on at most ``sample`` points (None with fewer than 2 clusters)."""
    if len(set(labels.tolist())) < 2 or len(z) < 3:
        return None
    size = min(sample, len(z))
    return float(silhouette_score(z, labels, sample_size=size if size < len(z) else None, random_state=seed))


def _thin(curve: np.ndarray | None, points: int = 200) -> list[float]:
    if curve is None or len(curve) == 0:
        return []
    idx = np.unique(np.linspace(0, len(curve) - 1, min(points, len(curve))).astype(int))
    return [float(v) for v in curve[idx]]
