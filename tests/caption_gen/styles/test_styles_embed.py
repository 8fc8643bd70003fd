import numpy as np
import pyarrow.parquet as pq
import pytest

from caption_gen.styles.embed import (
    STYLO_FEATURES,
    ClipTextEmbedder,
    EmbeddingCache,
    combine_features,
    stylometric_features,
)


@pytest.fixture(scope="module")
def embedder():
    return ClipTextEmbedder("ViT-B-32", None, batch_size=8, device="cpu", seed=0)


class _Counting:
    def __init__(self, inner):
        self.inner, self.key, self.calls = inner, inner.key, 0

    def encode(self, texts):
        self.calls += len(texts)
        return self.inner.encode(texts)


def test_clip_vectors_are_unit_and_deterministic(embedder):
    v = embedder.encode(["a [color] [garment]", "you will see a man"])
    assert v.shape == (2, 512) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    again = ClipTextEmbedder("ViT-B-32", None, batch_size=8, device="cpu", seed=0).encode(["a [color] [garment]"])
    assert np.allclose(v[0], again[0], atol=1e-5)


def test_cache_computes_only_missing_texts(tmp_path, embedder):
    cache = EmbeddingCache(tmp_path / "emb.parquet")
    counting = _Counting(embedder)
    a, n1 = cache.get_or_compute(["x one", "x two", "x one"], counting)
    assert n1 == 2 and counting.calls == 2 and np.allclose(a[0], a[2])
    b, n2 = cache.get_or_compute(["x two", "x three", "x one"], counting)
    assert n2 == 1 and counting.calls == 3
    assert np.allclose(b[0], a[1]) and np.allclose(b[2], a[0])
    table = pq.read_table(tmp_path / "emb.parquet")
    assert table.num_rows == 3 and set(table.column_names) == {"key", "text_sha256", "embedding"}


def test_stylometric_features_distinguish_styles():
    f = stylometric_features(["[color] [garment], [color] [footwear]",
                              "You will see a man; look for your clue!",
                              "The man has [color] hair. He wears a [garment]."])
    assert f.shape == (3, len(STYLO_FEATURES))
    col = {n: f[:, i] for i, n in enumerate(STYLO_FEATURES)}
    assert col["second_person_rate"][1] > 0 and col["second_person_rate"][0] == 0
    assert col["sentences"][2] == 2 and col["head_first"][2] == 1
    assert col["verb_rate"][0] == 0


def test_combine_features_weights_blocks():
    rng = np.random.default_rng(0)
    clip = rng.normal(size=(50, 16)).astype(np.float32)
    clip /= np.linalg.norm(clip, axis=1, keepdims=True)
    stylo = rng.normal(size=(50, 4)).astype(np.float32)
    x = combine_features(clip, stylo, w_clip=0.35, w_stylo=0.65)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    share = (np.linalg.norm(x[:, 16:], axis=1) ** 2).mean()
    assert 0.5 < share < 0.8  # stylometric block carries ~its weight
    assert np.allclose(combine_features(clip, None, w_stylo=0.0), clip, atol=1e-5)
    with pytest.raises(ValueError):
        combine_features(None, None)
