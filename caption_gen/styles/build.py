"""End-to-end style clustering (seed 000 §3.3, DESIGN §4): source texts → neutralize → features →
PCA → cluster → stabilize (noise reassigned, small clusters merged) → merge indistinct styles → style
prompts → style bank, assignments, clustering summary and the inspector page. Used by
``pedes styles build`` and the ``style-clusters`` flow.

Features (``embedding.features``, default ``auto``): with CLIP weights configured
(``embedding.checkpoint: PATH`` to a local open_clip checkpoint, or an open_clip ``pretrained`` tag)
the CLIP text embedding of the neutralized text, as seed 000 §3.3 writes; without weights the
stylometric + neutralized-text n-gram features (:mod:`caption_gen.styles.embed`) — a CLIP tower with
random weights carries no style, so it is used only when asked for explicitly
(``embedding.random_weights: true``, tests). The summary, the bank and the report say which was used.

Merging (choice, declared in ``merge:``): after stabilization, (1) clusters whose stylometric style
profiles are closer than ``merge.profile_distance`` (:func:`caption_gen.styles.cluster.merge_indistinct`)
are merged; then (2) clusters whose deterministic prompts say the same — the same distinguishing
features with the same directions, or prompt similarity ≥ ``merge.similarity_bound``
(:func:`caption_gen.styles.prompts.prompt_similarity`) — are merged, most similar pair first, until
every two prompts of the bank are below the bound. Both steps are recorded in ``clustering.json``
(``quality.merge``) with the cluster counts before and after.

Outputs in ``out``: ``assignments.parquet`` (``text``, ``neutralized``, ``style_id``, ``cluster_raw``
(−1 = noise before reassignment), ``pc1``/``pc2``, ``text_sha256``), ``bank.json`` + ``bank.meta.json``,
``clustering.json`` (parameters, quality, timings), ``config.resolved.yaml``, ``scatter.png`` and
``report.html``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from pedes_core.configuration import ConfigModel, ConfigPath, config_to_yaml, save_resolved
from pedes_core.errors import ConfigError

FeatureSet = Literal["auto", "stylometric+ngrams", "stylometric", "clip", "clip+stylometric+ngrams"]


class EmbedConfig(ConfigModel):
    """Style feature settings, ``embedding:`` (see :mod:`caption_gen.styles.embed`)."""

    model: str = "ViT-B-32"
    #: Local open_clip checkpoint of the CLIP model; set = the CLIP + DBSCAN setting of seed 000.
    checkpoint: ConfigPath | None = None
    #: open_clip pretrained tag (e.g. "openai"; downloads from the hub) — an alternative to ``checkpoint``.
    pretrained: str | None = None
    #: Allow a CLIP tower with random weights when ``features`` asks for CLIP without weights (tests only).
    random_weights: bool = False
    #: auto = "clip" when weights are configured, else "stylometric+ngrams".
    features: FeatureSet = "auto"
    batch_size: int = 256
    device: str | None = None
    #: Parquet embedding cache; None = ``<out>/embeddings.parquet``.
    cache: ConfigPath | None = None
    #: Which text CLIP embeds: the neutralized text (the paper's "style embeddings") or the original.
    text: Literal["neutralized", "original"] = "neutralized"
    #: Legacy switch: false = never CLIP.
    use_clip: bool = True
    w_clip: float = 0.35
    w_stylo: float = 0.6
    w_ngram: float = 0.4
    ngram_dims: int = 32


class ClusterConfig(ConfigModel):
    """Clustering settings (see :mod:`caption_gen.styles.cluster`)."""

    algorithm: Literal["dbscan", "hdbscan", "kmeans-ups"] = "dbscan"
    pca_components: int | None = 50
    eps: float | None = None
    min_samples: int | None = None
    min_cluster_size: int | None = None
    min_cluster_share: float = 0.01
    max_fit_points: int = 30000
    hdbscan_max_fit_points: int = 20000
    knee_sample: int = 20000
    n_clusters: int | None = None
    k_min: int = 2
    k_max: int = 12
    ups_per_cluster: int = 1
    ups_beta: float = 0.5
    silhouette_sample: int = 5000


class MergeConfig(ConfigModel):
    """Merging of over-split clusters (module docstring)."""

    #: RMS distance of two clusters' stylometric profiles (corpus standard deviations) below which they
    #: are one style; 0 disables the rule.
    profile_distance: float = 0.6
    #: Merge clusters whose prompts say the same (same distinguishing features, or similarity ≥ bound).
    prompt_identity: bool = True
    #: Upper bound of :func:`caption_gen.styles.prompts.prompt_similarity` between two prompts of a bank.
    similarity_bound: float = 0.8


class PromptConfig(ConfigModel):
    """Deterministic style prompts (:func:`caption_gen.styles.prompts.contrast_prompt`)."""

    #: A feature distinguishes a cluster when its mean is at least this many corpus sd from the corpus mean.
    min_z: float = 0.5
    max_features: int = 4
    pattern_words: int = 45


class StylesConfig(ConfigModel):
    """``pedes styles build`` configuration."""

    source: str | None = None
    split: str | None = None
    max_texts: int | None = None
    seed: int = 0
    neutralizer: Literal["rules", "llm", "none"] = "rules"
    prompter: Literal["statistics", "llm"] = "statistics"
    embedding: EmbedConfig = Field(default_factory=EmbedConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    merge: MergeConfig = Field(default_factory=MergeConfig)
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    exemplars: int = 12
    scatter_points: int = 20000
    report: bool = True

    @model_validator(mode="before")
    @classmethod
    def _legacy_embed(cls, data: Any) -> Any:
        """``embed:`` is the former name of ``embedding:`` (still accepted; merged, ``embed`` wins)."""
        if isinstance(data, dict) and "embed" in data:
            data = dict(data)
            legacy = data.pop("embed")
            current = data.get("embedding")
            if isinstance(current, BaseModel):
                current = current.model_dump()
            if isinstance(current, dict) and isinstance(legacy, dict):
                legacy = {**current, **legacy}
            data["embedding"] = legacy
        return data

    @property
    def embed(self) -> EmbedConfig:
        """Former name of :attr:`embedding`."""
        return self.embedding


def resolve_features(e: EmbedConfig) -> tuple[str, str | None, str]:
    """``(feature set, CLIP weights description or None, human-readable note)`` for an embedding config."""
    weights = str(e.checkpoint) if e.checkpoint else (e.pretrained or None)
    if weights in ("", "none", "None"):
        weights = None
    feats = e.features
    if feats == "auto":
        feats = "clip" if (weights and e.use_clip) else "stylometric+ngrams"
    uses_clip = feats.startswith("clip")
    if uses_clip and not e.use_clip:
        raise ConfigError(f"embedding.features {feats!r} contradicts embedding.use_clip: false")
    if uses_clip and weights is None:
        if not e.random_weights:
            raise ConfigError(f"embedding.features {feats!r} needs CLIP weights: set embedding.checkpoint to a local "
                              "open_clip checkpoint (or embedding.random_weights: true, for tests only)")
        return feats, None, (f"CLIP {e.model} with RANDOM weights (embedding.random_weights: true) — not style-aware, "
                             "for tests only")
    if uses_clip:
        return feats, weights, f"CLIP {e.model} text embeddings, weights {weights}"
    note = "stylometric features" if feats == "stylometric" else "stylometric + neutralized-text n-gram features"
    if weights is None:
        note += " (no CLIP weights configured; set embedding.checkpoint: PATH for CLIP + DBSCAN as seed 000 §3.3)"
    return feats, None, note


@dataclass
class BuildResult:
    out: Path
    n_texts: int
    n_styles: int
    labels: np.ndarray
    summary: dict[str, Any]


def _config_hash(cfg: StylesConfig) -> str:
    return hashlib.sha256(config_to_yaml(cfg).encode("utf-8")).hexdigest()


def _done(stage: str, progress: Callable[[str, int, int], None] | None) -> None:
    if progress is not None:
        progress(stage, BUILD_STAGES.index(stage) + 1, len(BUILD_STAGES))


#: the stages of :func:`build_styles`, in order (``progress(stage, done, total)`` after each)
BUILD_STAGES: tuple[str, ...] = ("load", "neutralize", "embed", "features", "pca", "cluster", "stabilize_merge",
                                 "prompts", "report")


def build_styles(cfg: StylesConfig, out: str | Path, *, backend: Any = None, texts: list[str] | None = None,
                 progress: Callable[[str, int, int], None] | None = None) -> BuildResult:
    """Run the whole style pipeline and write its outputs to ``out`` (see module docstring).

    ``backend`` (a ``CaptionBackend``) is needed only by the LLM neutralizer/prompter; ``texts``
    overrides ``cfg.source`` (for flows that already hold the texts); ``progress(stage, done, total)`` is
    called after each of :data:`BUILD_STAGES`."""
    import pandas as pd

    from caption_gen.styles import cluster as cl
    from caption_gen.styles.bank import StyleEntry, style_id_for, write_style_bank
    from caption_gen.styles.embed import (
        ClipTextEmbedder,
        EmbeddingCache,
        combine_features,
        ngram_features,
        stylometric_features,
        text_sha256,
        zscore,
    )
    from caption_gen.styles.neutralize import content_survival, make_neutralizer
    from caption_gen.styles.sources import load_style_texts

    out = Path(out)
    feature_set, clip_weights, feature_note = resolve_features(cfg.embedding)
    if cfg.embedding.checkpoint is not None and not Path(cfg.embedding.checkpoint).is_file():
        raise ConfigError(f"embedding.checkpoint: {cfg.embedding.checkpoint}: no such file")
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if texts is None:
        if not cfg.source:
            raise ConfigError("styles: no source given (--source or source: in the config)")
        src = load_style_texts(cfg.source, split=cfg.split, max_texts=cfg.max_texts, seed=cfg.seed)
        texts, origin, kind, skipped = src.texts, src.origin, src.kind, src.skipped
    else:
        origin, kind, skipped = "<in-memory>", "texts", 0
    n = len(texts)
    timings["load_s"] = time.perf_counter() - t0
    _done("load", progress)

    t = time.perf_counter()
    neutralizer = make_neutralizer(cfg.neutralizer, backend)
    neutral = neutralizer.neutralize(texts)
    survival = content_survival(texts, neutral)
    timings["neutralize_s"] = time.perf_counter() - t
    _done("neutralize", progress)

    e = cfg.embedding
    t = time.perf_counter()
    clip_vecs = None
    n_computed = 0
    embed_key = None
    if feature_set.startswith("clip"):
        embedder = ClipTextEmbedder(e.model, clip_weights, batch_size=e.batch_size, device=e.device, seed=cfg.seed)
        cache = EmbeddingCache(e.cache or out / "embeddings.parquet")
        embed_texts = neutral if e.text == "neutralized" else texts
        clip_vecs, n_computed = cache.get_or_compute(embed_texts, embedder)
        embed_key = embedder.key
    timings["embed_s"] = time.perf_counter() - t
    _done("embed", progress)
    t = time.perf_counter()
    stylo = stylometric_features(neutral)  # always: the merge rule and the prompts use it
    stylo_z = zscore(stylo)
    use_stylo = feature_set != "clip"
    use_ngram = feature_set.endswith("ngrams")
    ngrams = ngram_features(neutral, dims=e.ngram_dims, seed=cfg.seed) if use_ngram else None
    weights = {"clip": (e.w_clip if feature_set != "clip" else 1.0) if clip_vecs is not None else 0.0,
               "stylometric": e.w_stylo if use_stylo else 0.0, "ngrams": e.w_ngram if use_ngram else 0.0}
    feats = combine_features(clip_vecs, stylo if use_stylo else None, w_clip=weights["clip"],
                             w_stylo=weights["stylometric"], ngrams=ngrams, w_ngram=weights["ngrams"])
    timings["features_s"] = time.perf_counter() - t
    _done("features", progress)

    t = time.perf_counter()
    c = cfg.cluster
    z, pca = cl.reduce_dims(feats, c.pca_components, cfg.seed)
    timings["pca_s"] = time.perf_counter() - t
    _done("pca", progress)
    t = time.perf_counter()
    if c.algorithm == "dbscan":
        fit = cl.fit_dbscan(z, eps=c.eps, min_samples=c.min_samples, max_fit_points=c.max_fit_points,
                            knee_sample=c.knee_sample, seed=cfg.seed)
    elif c.algorithm == "hdbscan":
        fit = cl.fit_hdbscan(z, min_cluster_size=c.min_cluster_size, min_samples=c.min_samples,
                             max_fit_points=c.hdbscan_max_fit_points, seed=cfg.seed)
    else:
        fit = cl.fit_kmeans_ups(z, n_clusters=c.n_clusters, k_range=(c.k_min, c.k_max),
                                ups_per_cluster=c.ups_per_cluster, ups_beta=c.ups_beta,
                                max_fit_points=c.max_fit_points, silhouette_sample=min(c.silhouette_sample, 3000),
                                seed=cfg.seed)
    timings["cluster_s"] = time.perf_counter() - t
    _done("cluster", progress)
    t = time.perf_counter()
    min_size = c.min_cluster_size or cl.auto_min_cluster_size(n, c.min_cluster_share)
    labels, stab = cl.stabilize(z, fit.labels, min_size=min_size)
    k_stab = int(labels.max()) + 1 if n else 0
    labels, profile_merge = cl.merge_indistinct(labels, stylo_z, profile_distance=cfg.merge.profile_distance)
    k_profile = int(labels.max()) + 1 if n else 0
    labels, prompt_merge, briefs = _merge_by_prompt(cfg, labels, stylo, z, neutral)
    sil = cl.silhouette_sampled(z, labels, sample=c.silhouette_sample, seed=cfg.seed)
    timings["stabilize_merge_s"] = time.perf_counter() - t
    _done("stabilize_merge", progress)

    t = time.perf_counter()
    from caption_gen.styles.prompts import (
        LLMStylePrompter,
        cluster_statistics,
        max_pairwise_similarity,
        statistics_prompts,
    )

    k = int(labels.max()) + 1 if n else 0
    rng = np.random.default_rng(cfg.seed)
    groups = [np.flatnonzero(labels == s_) for s_ in range(k)]
    exemplar_rows: list[list[int]] = []
    for s_, idx in enumerate(groups):
        medoid = briefs[s_]["medoid"]
        rest = idx[idx != medoid]
        pick = rest if len(rest) <= cfg.exemplars - 1 else np.sort(rng.choice(rest, cfg.exemplars - 1, replace=False))
        exemplar_rows.append([int(medoid)] + [int(i) for i in pick])
        briefs[s_]["brief"].exemplars = [neutral[i] for i in exemplar_rows[-1]]
        briefs[s_]["brief"].statistics = cluster_statistics([texts[i] for i in idx], [neutral[i] for i in idx])
    brief_list = [b["brief"] for b in briefs]
    prompter_fallbacks: dict[str, int] = {}
    if cfg.prompter == "llm":
        if backend is None:
            raise ConfigError("prompter 'llm' needs a captioning backend")
        writer = LLMStylePrompter(backend, similarity_bound=cfg.merge.similarity_bound)
        prompts = writer.write(brief_list)
        prompter_fallbacks = writer.fallbacks
    else:
        prompts = statistics_prompts(brief_list)
    sim_max, sim_pair = max_pairwise_similarity([p[0] for p in prompts])
    timings["prompts_s"] = time.perf_counter() - t
    _done("prompts", progress)

    style_ids = [style_id_for(s_) for s_ in range(k)]
    styles = [StyleEntry(style_id=style_ids[s_], prompt=prompts[s_][0], size=int(len(groups[s_])),
                         share=float(len(groups[s_]) / n), prompt_source=prompts[s_][1], features=feature_note,
                         distinguishing=tuple(d.as_dict() for d in brief_list[s_].contrast),
                         pattern=brief_list[s_].pattern) for s_ in range(k)]
    cfg_hash = _config_hash(cfg)
    write_style_bank(styles, out, meta={"algorithm": c.algorithm, "source": origin, "texts": n,
                                        "config_sha256": cfg_hash, "features": feature_set,
                                        "features_note": feature_note, "clip_weights": clip_weights})
    xy = z[:, :2] if pca is not None and z.shape[1] >= 2 else _pca2(z, cfg.seed)
    table = pd.DataFrame({
        "text": texts,
        "neutralized": neutral,
        "style_id": np.asarray(style_ids, dtype=object)[labels] if k else [],
        "cluster_raw": fit.labels.astype(np.int64),
        "pc1": xy[:, 0].astype(np.float32),
        "pc2": xy[:, 1].astype(np.float32) if xy.shape[1] > 1 else np.zeros(n, np.float32),
        "text_sha256": [text_sha256(x) for x in texts],
    })
    tmp = out / "assignments.parquet.tmp"
    table.to_parquet(tmp, index=False, compression="zstd")
    tmp.replace(out / "assignments.parquet")
    merge_summary = {
        "clusters_found": stab["clusters_before"],
        "after_stabilization": k_stab,
        "after_profile_merge": k_profile,
        "after_prompt_merge": k,
        "profile_rule": profile_merge["rule"],
        "profile_merges": profile_merge["merged"],
        "min_profile_distance_after": profile_merge["min_distance_after"],
        "prompt_rule": prompt_merge["rule"],
        "prompt_merges": prompt_merge["merged"],
    }
    summary = {
        "source": {"origin": origin, "kind": kind, "texts": n, "skipped_empty": skipped},
        "algorithm": c.algorithm,
        "params": fit.params,
        "features": {"set": feature_set, "note": feature_note, "clip": embed_key, "clip_weights": clip_weights,
                     "weights": weights, "dims": int(feats.shape[1]),
                     "pca_components": int(z.shape[1]) if pca is not None else None,
                     "pca_explained_variance": float(pca.explained_variance_ratio_.sum()) if pca is not None else None,
                     "embeddings_computed": n_computed, "embeddings_cached": n - n_computed if clip_vecs is not None else 0},
        "neutralizer": {"kind": cfg.neutralizer, "content_survival": survival,
                        "fallbacks": getattr(neutralizer, "fallbacks", {})},
        "quality": {"clusters_raw": stab["clusters_before"], "noise_share_before": stab["noise_share_before"],
                    "noise_reassigned": stab["noise_reassigned"], "merged": stab["merged"],
                    "min_cluster_size": min_size, "styles": k, "sizes": [int(len(g)) for g in groups],
                    "silhouette": sil, "merge": merge_summary,
                    "prompt_similarity_max": sim_max, "prompt_similarity_pair": list(sim_pair) if sim_pair else None,
                    "prompt_similarity_bound": cfg.merge.similarity_bound},
        "extra": fit.extra,
        "prompt_sources": [p[1] for p in prompts],
        "prompter_fallbacks": prompter_fallbacks,
        "exemplar_rows": exemplar_rows,
        "statistics": [b.statistics for b in brief_list],
        "contrast": [[d.as_dict() for d in b["all"][:8]] for b in briefs],
        "distinguishing": [[d.as_dict() for d in b.contrast] for b in brief_list],
        "patterns": [b.pattern for b in brief_list],
        "timings": timings,
        "seed": cfg.seed,
        "config_sha256": cfg_hash,
    }
    (out / "clustering.json").write_text(json.dumps(summary, indent=2, default=float) + "\n", encoding="utf-8")
    save_resolved(cfg, out)
    if cfg.report:
        from caption_gen.styles.report import write_report

        t = time.perf_counter()
        write_report(out, max_points=cfg.scatter_points, seed=cfg.seed)
        timings["report_s"] = time.perf_counter() - t
    _done("report", progress)  # also when no report is written: the stage is over
    timings["total_s"] = time.perf_counter() - t0
    summary["timings"] = timings
    (out / "clustering.json").write_text(json.dumps(summary, indent=2, default=float) + "\n", encoding="utf-8")
    return BuildResult(out=out, n_texts=n, n_styles=k, labels=labels, summary=summary)


def _briefs(cfg: StylesConfig, labels: np.ndarray, stylo: np.ndarray, z: np.ndarray,
            neutral: list[str]) -> list[dict[str, Any]]:
    """Per cluster: medoid row, full contrast, distinguishing features, pattern and the deterministic prompt."""
    from caption_gen.styles.prompts import (
        ClusterBrief,
        contrast_prompt,
        corpus_contrast,
        distinguishing,
        exemplar_pattern,
    )

    contrasts = corpus_contrast(stylo, labels)
    out = []
    for s_, devs in enumerate(contrasts):
        idx = np.flatnonzero(labels == s_)
        centre = z[idx].mean(axis=0)
        medoid = int(idx[int(np.argmin(np.linalg.norm(z[idx] - centre, axis=1)))])
        dist = distinguishing(devs, min_z=cfg.prompt.min_z, max_features=cfg.prompt.max_features)
        pattern = exemplar_pattern(neutral[medoid], cfg.prompt.pattern_words)
        out.append({"medoid": medoid, "all": devs, "prompt": contrast_prompt(dist, pattern),
                    "brief": ClusterBrief(exemplars=[neutral[medoid]], statistics={}, contrast=dist, pattern=pattern)})
    return out


def _merge_by_prompt(cfg: StylesConfig, labels: np.ndarray, stylo: np.ndarray, z: np.ndarray,
                     neutral: list[str]) -> tuple[np.ndarray, dict[str, Any], list[dict[str, Any]]]:
    """Rule (2) of the module docstring: merge the two clusters whose deterministic prompts are most alike
    while they share their distinguishing features (same signature) or their similarity reaches the bound."""
    from caption_gen.styles import cluster as cl
    from caption_gen.styles.prompts import prompt_similarity, signature

    bound = cfg.merge.similarity_bound
    info: dict[str, Any] = {"rule": (f"same distinguishing features, or prompt similarity >= {bound}"
                                     if cfg.merge.prompt_identity else "off"), "merged": []}
    while True:
        briefs = _briefs(cfg, labels, stylo, z, neutral)
        if not cfg.merge.prompt_identity or len(briefs) < 2:
            return labels, info, briefs
        best: tuple[float, int, int, str] | None = None
        for i in range(len(briefs)):
            for j in range(i + 1, len(briefs)):
                same = signature(briefs[i]["brief"].contrast) == signature(briefs[j]["brief"].contrast)
                sim = prompt_similarity(briefs[i]["prompt"], briefs[j]["prompt"])
                if same or sim >= bound:
                    key = (2.0 if same else sim, i, j, "same distinguishing features" if same else "prompt similarity")
                    if best is None or key[0] > best[0]:
                        best = key
        if best is None:
            return labels, info, briefs
        score, i, j, why = best
        sizes = np.bincount(labels)
        a, b = (i, j) if sizes[i] >= sizes[j] else (j, i)
        info["merged"].append({"from": int(b), "into": int(a), "why": why,
                               "similarity": round(prompt_similarity(briefs[a]["prompt"], briefs[b]["prompt"]), 4),
                               "signature": list(signature(briefs[b]["brief"].contrast))})
        labels = cl.merge_pair(labels, a, b)


def _pca2(z: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    if z.shape[0] < 2 or z.shape[1] < 2:
        return np.zeros((z.shape[0], 2), np.float32)
    return PCA(n_components=2, random_state=seed).fit_transform(z).astype(np.float32)
