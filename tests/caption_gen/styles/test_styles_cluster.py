import numpy as np
import pytest

from caption_gen.styles import cluster as cl


def _blobs(seed=0, n_per=80, dim=8, centers=((0, 0), (6, 0), (0, 6))):
    rng = np.random.default_rng(seed)
    pts, lab = [], []
    for i, c in enumerate(centers):
        mu = np.zeros(dim)
        mu[: len(c)] = c
        pts.append(rng.normal(mu, 0.4, size=(n_per, dim)))
        lab += [i] * n_per
    return np.concatenate(pts).astype(np.float32), np.array(lab)


def test_knee_index_finds_elbow_and_falls_back_on_straight_line():
    flat = np.r_[np.linspace(0.1, 0.2, 90), np.linspace(1.0, 5.0, 10)]
    idx, found = cl.knee_index(flat)
    assert found and 85 <= idx <= 90
    line = np.linspace(0, 1, 101)
    idx, found = cl.knee_index(line, fallback_quantile=0.95)
    assert not found and idx == 95


def test_knee_eps_separates_blobs_and_flags_noise():
    x, y = _blobs()
    rng = np.random.default_rng(1)
    noise = rng.uniform(-20, 26, size=(12, x.shape[1])).astype(np.float32)
    z = np.concatenate([x, noise])
    fit = cl.fit_dbscan(z, min_samples=6)
    labels = fit.labels
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(y, labels[: len(y)]) > 0.95
    assert (labels[len(y):] == cl.NOISE).mean() > 0.8
    assert fit.params["eps_source"] == "knee"
    assert 0 < fit.params["eps"] < 6


def test_cosine_eps_conversion():
    a = np.array([1.0, 0.0])
    b = np.array([np.cos(0.5), np.sin(0.5)])
    c = 1 - a @ b
    assert np.isclose(np.linalg.norm(a - b), cl.cosine_to_euclidean_eps(c))


def test_stabilize_reassigns_noise_and_merges_small_clusters():
    z = np.array([[0, 0], [0, 1], [1, 0], [10, 10], [10, 11], [11, 10], [11, 11], [0.5, 0.5], [9.5, 10.5], [20, 20]],
                 dtype=np.float32)
    labels = np.array([0, 0, 0, 1, 1, 1, 1, -1, -1, 2])
    out, info = cl.stabilize(z, labels, min_size=2)
    # noise at (0.5,0.5) joins cluster 0, noise at (9.5,10.5) joins cluster 1; singleton 2 merged into 1 (nearest)
    assert info["noise_share_before"] == pytest.approx(0.2)
    assert info["noise_reassigned"] == 2
    assert info["merged"] == [{"from": 2, "into": 1, "size": 1}]
    # renumbered by size: old 1 (4+1+1=6) -> 0, old 0 (3+1=4) -> 1
    assert out.tolist() == [1, 1, 1, 0, 0, 0, 0, 1, 0, 0]
    assert info["sizes"] == [6, 4]


def test_stabilize_all_noise_gives_one_style():
    z = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    out, info = cl.stabilize(z, np.full(7, -1), min_size=3)
    assert set(out.tolist()) == {0} and info["all_noise"]


def test_ups_prototypes_lie_in_beta_box():
    x, y = _blobs(n_per=50)
    rng = np.random.default_rng(0)
    protos, parents = cl.uniform_prototypes(x, y, per_cluster=20, beta=0.5, rng=rng)
    assert protos.shape == (60, x.shape[1])
    for c in range(3):
        m, s = x[y == c].mean(0), x[y == c].std(0)
        p = protos[parents == c]
        assert np.all(p >= m - 0.5 * s - 1e-6) and np.all(p <= m + 0.5 * s + 1e-6)


def test_kmeans_ups_chooses_k_and_is_deterministic():
    x, y = _blobs()
    a = cl.fit_kmeans_ups(x, ups_per_cluster=0, seed=3)
    b = cl.fit_kmeans_ups(x, ups_per_cluster=0, seed=3)
    assert a.params["k"] == 3 and a.params["k_source"] == "silhouette"
    assert np.array_equal(a.labels, b.labels)
    ups = cl.fit_kmeans_ups(x, ups_per_cluster=2, seed=3)
    assert ups.params["centers"] == 9
    # prototypes split clusters but never mix two planted clusters
    for lab in set(ups.labels.tolist()):
        assert len(set(y[ups.labels == lab].tolist())) == 1


@pytest.mark.parametrize("algo", ["dbscan", "hdbscan"])
def test_sampled_fit_labels_every_point_and_is_deterministic(algo):
    x, y = _blobs(n_per=300)
    fn = cl.fit_dbscan if algo == "dbscan" else cl.fit_hdbscan
    a = fn(x, max_fit_points=200, seed=5)
    b = fn(x, max_fit_points=200, seed=5)
    assert a.params["fit_points"] == 200
    assert np.array_equal(a.labels, b.labels)
    from sklearn.metrics import adjusted_rand_score

    ok = a.labels != cl.NOISE
    assert ok.mean() > 0.8
    assert adjusted_rand_score(y[ok], a.labels[ok]) > 0.95


def test_reduce_dims_pca_shape_and_skip():
    x = np.random.default_rng(0).normal(size=(300, 80)).astype(np.float32)
    z, pca = cl.reduce_dims(x, 50, 0)
    assert z.shape == (300, 50) and pca is not None
    z2, pca2 = cl.reduce_dims(x[:, :20], 50, 0)
    assert z2.shape == (300, 20) and pca2 is None
