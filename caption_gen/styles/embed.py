"""Style embeddings (seed 000 §3.3: "use the CLIP text encoder to embed the original descriptions").

* :class:`ClipTextEmbedder` — open_clip text tower (ViT-B-32 by default, as seed 000 uses
  ``clip-vit-base-patch32``), batched, L2-normalized, float32. Weights come from a local checkpoint
  (``embedding.checkpoint``) or an open_clip tag; random weights only on explicit request (tests).
* :class:`EmbeddingCache` — Parquet file of ``(key, text_sha256, embedding)`` rows; ``key`` names the
  model + weights, so changing weights never reuses stale vectors. Only missing texts are encoded.
* :func:`stylometric_features` — cheap, content-free writing-style features: length, sentences,
  punctuation (commas, semicolons, questions, exclamations, final stop), person (first/second/third),
  tense, voice, participial opening, order of mention (person/head/clothing first, feet last),
  list-ness, detail density.
* :func:`ngram_features` — word 1–3-gram TF-IDF of the *neutralized* text reduced by truncated SVD:
  the function words, connectors and punctuation a style uses.
* :func:`combine_features` — the clustering input: each block scaled so that it contributes its weight
  to the expected squared norm (``sqrt(w) * block``, the stylometric block z-scored and divided by
  ``sqrt(d)``), then L2-normalized rows.

Choice (seed 000 §3.3 embeds with CLIP; DESIGN §4): without CLIP weights the default features are
stylometric + neutralized-text n-grams, the ones that carry meaning without weights — a random-weight
CLIP is not style-aware. With weights configured the default is CLIP alone, as seed 000 writes.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from caption_gen.styles.lexicons import BODY_WORDS, FEET_WORDS, HEAD_WORDS, SECOND_PERSON, count_content_words


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ClipTextEmbedder:
    """open_clip text tower → L2-normalized float32 vectors."""

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | None = None,
        *,
        batch_size: int = 256,
        device: str | None = None,
        seed: int = 0,
    ) -> None:
        import open_clip
        import torch

        self.model_name = model_name
        self.pretrained = None if pretrained in (None, "", "none") else str(pretrained)
        self.batch_size = batch_size
        self.device = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        torch.manual_seed(seed)  # random-init weights are deterministic for a seed
        model = open_clip.create_model(model_name, pretrained=self.pretrained, device=self.device)
        if hasattr(model, "visual"):
            model.visual = torch.nn.Identity()  # text tower only; frees the image tower's memory
        self.model = model.eval()
        self.tokenizer = open_clip.get_tokenizer(model_name)
        weights = self.pretrained or f"random-seed{seed}"
        if self.pretrained and Path(self.pretrained).is_file():
            st = Path(self.pretrained).stat()
            weights = f"{Path(self.pretrained).name}:{st.st_size}:{int(st.st_mtime)}"
        #: Cache key: model + weights identity.
        self.key = f"open_clip:{model_name}:{weights}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        chunks: list[np.ndarray] = []
        with torch.inference_mode(), torch.autocast(self.device.type, enabled=self.device.type == "cuda"):
            for start in range(0, len(texts), self.batch_size):
                tokens = self.tokenizer(list(texts[start : start + self.batch_size])).to(self.device)
                feats = self.model.encode_text(tokens).float()
                feats = torch.nn.functional.normalize(feats, dim=-1)
                chunks.append(feats.cpu().numpy().astype(np.float32))
        dim = int(chunks[0].shape[1]) if chunks else 0
        return np.concatenate(chunks) if chunks else np.zeros((0, dim), np.float32)


class EmbeddingCache:
    """Parquet cache of text embeddings keyed by (model key, sha256 of the text)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _read(self, key: str) -> tuple[list[str], np.ndarray | None]:
        if not self.path.is_file():
            return [], None
        table = pq.read_table(self.path, filters=[("key", "=", key)])
        if table.num_rows == 0:
            return [], None
        col = table.column("embedding").combine_chunks()
        dim = col.type.list_size
        vecs = col.values.to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32, copy=False)
        return table.column("text_sha256").to_pylist(), vecs

    def get_or_compute(self, texts: Sequence[str], embedder: Any) -> tuple[np.ndarray, int]:
        """Embeddings of ``texts`` (aligned); returns ``(vectors, n_computed)`` and stores new ones."""
        import pandas as pd

        hashes = [text_sha256(t) for t in texts]
        cached_hashes, cached = self._read(embedder.key)
        index = pd.Index(cached_hashes)
        if not index.is_unique:
            keep = ~index.duplicated()
            index, cached = index[keep], cached[np.asarray(keep)]
        pos = index.get_indexer(pd.Index(hashes)) if len(index) else np.full(len(hashes), -1)
        missing = np.flatnonzero(pos < 0)
        uniq_missing: dict[str, int] = {}
        for i in missing:
            uniq_missing.setdefault(hashes[i], int(i))
        new_vecs = embedder.encode([texts[i] for i in uniq_missing.values()]) if uniq_missing else None
        dim = (cached.shape[1] if cached is not None else new_vecs.shape[1]) if (cached is not None or new_vecs is not None) else 0
        out = np.empty((len(texts), dim), np.float32)
        hit = pos >= 0
        if hit.any():
            out[hit] = cached[pos[hit]]
        if new_vecs is not None:
            new_pos = {h: j for j, h in enumerate(uniq_missing)}
            for i in missing:
                out[i] = new_vecs[new_pos[hashes[i]]]
            self._append(embedder.key, list(uniq_missing), new_vecs)
        return out, len(uniq_missing)

    def _append(self, key: str, hashes: list[str], vecs: np.ndarray) -> None:
        dim = vecs.shape[1]
        new = pa.table(
            {
                "key": pa.array([key] * len(hashes), pa.string()),
                "text_sha256": pa.array(hashes, pa.string()),
                "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1), pa.float32()), dim),
            }
        )
        if self.path.is_file():
            old = pq.read_table(self.path)
            if old.schema.field("embedding").type == new.schema.field("embedding").type:
                new = pa.concat_tables([old, new])
            else:  # another model's dimension: keep both by splitting into a sibling file
                old_path = self.path.with_name(self.path.stem + f"-{old.schema.field('embedding').type.list_size}d.parquet")
                pq.write_table(old, old_path, compression="zstd")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".parquet.tmp")
        pq.write_table(new, tmp, compression="zstd")
        tmp.replace(self.path)


# ---------------------------------------------------------------- stylometric features

_WORD = re.compile(r"[A-Za-z\[\]']+")
_SENT_END = re.compile(r"[.!?]+(?:\s|$)")
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")

#: Names of the stylometric features, in column order. The first block describes a text's *form*
#: (length, sentences, punctuation, person, tense, voice, order of mention); all are content-free on a
#: neutralized text. What each one means (and how a style prompt phrases it) is in
#: :data:`caption_gen.styles.prompts.FEATURES`.
STYLO_FEATURES: tuple[str, ...] = (
    "log_words",
    "sentences",
    "words_per_sentence",
    "comma_rate",
    "period_rate",
    "semicolon_colon_rate",
    "second_person_rate",
    "head_first",
    "clothing_first",
    "feet_last",
    "fragment_length",
    "verb_rate",
    "detail_density",
    "starts_with_article",
    "mean_word_length",
    "question_share",
    "exclamation_share",
    "first_person_rate",
    "third_person_rate",
    "past_tense_rate",
    "passive_rate",
    "participial_opening",
    "person_first",
    "no_final_stop",
)

_VERBS = frozenset(
    "is are was were has have had wears wear wearing wore dressed carries carry carrying carried holds holding held "
    "walks walking walked stands standing stood see saw seen notice noticed spot look looking sports sporting "
    "appears seems seemed can will think remember recall believe could miss".split()
)
_FIRST_PERSON = frozenset("i me my mine we us our i'm i've i'd".split())
_THIRD_PERSON = frozenset("he she they his her him them their hers theirs himself herself".split())
_PAST = frozenset("was were had wore saw carried held walked stood noticed seemed looked thought remembered "
                  "did went appeared recalled".split())
_PASSIVE = re.compile(r"\b(?:is|are|was|were|be|been|being)\s+(?:\w+ly\s+)?(?:worn|dressed|clad|carried|held|seen|"
                      r"visible|covered|paired|complemented|topped|finished|accompanied|tied|pulled|styled)\b", re.I)
_PARTICIPLE_OPENERS = frozenset("dressed clad wearing sporting carrying holding walking standing having seen "
                                "attired outfitted donning".split())
_PERSON_TOKENS = frozenset(("[person]",))


def _first_pos(tokens: list[str], vocab: tuple[str, ...] | frozenset[str]) -> float:
    vs = set(vocab)
    for i, t in enumerate(tokens):
        if t in vs:
            return i / max(1, len(tokens))
    return 1.0


def stylometric_row(text: str) -> list[float]:
    """Raw (unscaled) stylometric features of one text, in :data:`STYLO_FEATURES` order."""
    tokens = [t.lower() for t in _WORD.findall(text)]
    n = max(1, len(tokens))
    stripped = text.strip()
    sentences = max(1, len(_SENT_END.findall(stripped)) or 1)
    parts = [p.strip() for p in _SENTENCE.findall(stripped) if p.strip()]
    n_parts = max(1, len(parts))
    commas = text.count(",")
    head, body, feet = _first_pos(tokens, HEAD_WORDS), _first_pos(tokens, BODY_WORDS), _first_pos(tokens, FEET_WORDS)
    person = _first_pos(tokens, _PERSON_TOKENS | {"person", "woman", "man", "girl", "boy", "lady", "guy"})
    fragments = [f for f in re.split(r"[,.;:!?]", text) if f.strip()]
    frag_len = float(np.mean([len(f.split()) for f in fragments])) if fragments else 0.0
    placeholders = text.count("[")
    return [
        math.log1p(len(tokens)),
        float(sentences),
        len(tokens) / sentences,
        commas / n,
        text.count(".") / n,
        (text.count(";") + text.count(":")) / n,
        sum(t in SECOND_PERSON for t in tokens) / n,
        float(head < body),
        float(body < head),
        float(feet > body and feet < 1.0),
        frag_len,
        sum(t in _VERBS for t in tokens) / n,
        (placeholders + count_content_words(text)) / n,
        float(bool(tokens) and tokens[0] in ("a", "an", "the")),
        float(np.mean([len(t) for t in tokens])) if tokens else 0.0,
        sum(p.endswith("?") for p in parts) / n_parts,
        sum(p.endswith("!") for p in parts) / n_parts,
        sum(t in _FIRST_PERSON for t in tokens) / n,
        sum(t in _THIRD_PERSON for t in tokens) / n,
        sum(t in _PAST for t in tokens) / n,
        len(_PASSIVE.findall(text)) / n_parts,
        float(bool(tokens) and (tokens[0] in _PARTICIPLE_OPENERS or (tokens[0].endswith("ing") and len(tokens[0]) > 4))),
        float(person < min(head, body, feet)),
        float(bool(stripped) and stripped[-1] not in ".!?"),
    ]


def stylometric_features(texts: Sequence[str]) -> np.ndarray:
    """``(n, len(STYLO_FEATURES))`` float32 matrix of raw stylometric features."""
    return np.asarray([stylometric_row(t) for t in texts], dtype=np.float32).reshape(len(texts), len(STYLO_FEATURES))


def zscore(features: np.ndarray, clip: float = 5.0) -> np.ndarray:
    """Column z-scores (constant columns → 0), clipped to ±``clip``."""
    mu = features.mean(axis=0)
    sd = features.std(axis=0)
    sd[sd < 1e-8] = 1.0
    return np.clip((features - mu) / sd, -clip, clip).astype(np.float32)


# ---------------------------------------------------------------- neutralized-text n-grams

_PRONOUN_CLASS = {"he": "PRONSUBJ", "she": "PRONSUBJ", "they": "PRONSUBJ", "his": "PRONPOSS", "her": "PRONPOSS",
                  "their": "PRONPOSS", "him": "PRONOBJ", "them": "PRONOBJ"}
_NGRAM_TOKEN = re.compile(r"\[[a-z]+\]|[a-z']+|[,;:!?.]")


def _ngram_tokens(text: str) -> list[str]:
    """Tokens of a neutralized text for the n-gram block: placeholders, words and punctuation; gendered
    pronouns collapse to one class each (gender is content, pronoun use is style)."""
    return [_PRONOUN_CLASS.get(t, t) for t in _NGRAM_TOKEN.findall(text.lower())]


def ngram_features(texts: Sequence[str], *, dims: int = 32, seed: int = 0) -> np.ndarray:
    """Word 1–3-gram TF-IDF of the neutralized texts (placeholders and punctuation are tokens), reduced
    to ``dims`` dimensions by truncated SVD and L2-normalized: which function words, connectors and
    punctuation a style uses, in which order, without any model weights."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    n = len(texts)
    if n == 0:
        return np.zeros((0, dims), np.float32)
    vec = TfidfVectorizer(tokenizer=_ngram_tokens, preprocessor=None, lowercase=False, token_pattern=None,
                          ngram_range=(1, 3), sublinear_tf=True, min_df=min(2, n), norm="l2")
    try:
        x = vec.fit_transform(list(texts))
    except ValueError:  # no n-gram occurs twice
        return np.zeros((n, dims), np.float32)
    k = int(min(dims, x.shape[1] - 1, n - 1))
    if k < 1:
        out = np.asarray(x.todense(), np.float32)
    else:
        out = TruncatedSVD(n_components=k, random_state=seed).fit_transform(x).astype(np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms < 1e-12] = 1.0
    return out / norms


def combine_features(
    clip_vecs: np.ndarray | None, stylo: np.ndarray | None, *, w_clip: float = 0.35, w_stylo: float = 0.65,
    ngrams: np.ndarray | None = None, w_ngram: float = 0.0,
) -> np.ndarray:
    """Weighted concatenation (see module docstring), L2-normalized rows."""
    blocks = []
    if clip_vecs is not None and w_clip > 0:
        blocks.append(math.sqrt(w_clip) * clip_vecs.astype(np.float32))
    if stylo is not None and w_stylo > 0:
        z = zscore(stylo)
        blocks.append(math.sqrt(w_stylo) * z / math.sqrt(z.shape[1]))
    if ngrams is not None and w_ngram > 0:
        blocks.append(math.sqrt(w_ngram) * ngrams.astype(np.float32))
    if not blocks:
        raise ValueError("combine_features: every feature block is disabled (all weights are 0)")
    x = np.concatenate(blocks, axis=1)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms < 1e-12] = 1.0
    return (x / norms).astype(np.float32)
