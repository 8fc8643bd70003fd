"""End-to-end style clustering (seed 000 §3.3, DESIGN §4): source texts → neutralize → embed
(CLIP text tower + stylometric features) → PCA → cluster → stabilize → style prompts → style bank,
assignments, clustering summary and the inspector page. Used by ``pedes styles build`` and the
``style-clusters`` flow.

Outputs in ``out``: ``assignments.parquet`` (``text``, ``neutralized``, ``style_id``, ``cluster_raw``
(−1 = noise before reassignment), ``pc1``/``pc2``, ``text_sha256``), ``bank.json`` + ``bank.meta.json``,
``clustering.json`` (parameters, quality, timings), ``config.resolved.yaml``, ``scatter.png`` and
``report.html``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pedes_core.configuration import ConfigModel, ConfigPath, config_to_yaml, save_resolved
from pedes_core.errors import ConfigError


class EmbedConfig(ConfigModel):
    """Style embedding settings (see :mod:`caption_gen.styles.embed`)."""

    model: str = "ViT-B-32"
    #: open_clip pretrained tag or a local checkpoint path; None = random weights (tests only).
    pretrained: str | None = None
    batch_size: int = 256
    device: str | None = None
    #: Parquet embedding cache; None = ``<out>/embeddings.parquet``.
    cache: ConfigPath | None = None
    #: Which text CLIP embeds: the neutralized text (the paper's "style embeddings") or the original.
    text: Literal["neutralized", "original"] = "neutralized"
    use_clip: bool = True
    w_clip: float = 0.35
    w_stylo: float = 0.65


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


class StylesConfig(ConfigModel):
    """``pedes styles build`` configuration."""

    source: str | None = None
    split: str | None = None
    max_texts: int | None = None
    seed: int = 0
    neutralizer: Literal["rules", "llm", "none"] = "rules"
    prompter: Literal["statistics", "llm"] = "statistics"
    embed: EmbedConfig = EmbedConfig()
    cluster: ClusterConfig = ClusterConfig()
    exemplars: int = 12
    scatter_points: int = 20000
    report: bool = True


@dataclass
class BuildResult:
    out: Path
    n_texts: int
    n_styles: int
    labels: np.ndarray
    summary: dict[str, Any]


def _config_hash(cfg: StylesConfig) -> str:
    return hashlib.sha256(config_to_yaml(cfg).encode("utf-8")).hexdigest()


def build_styles(cfg: StylesConfig, out: str | Path, *, backend: Any = None, texts: list[str] | None = None) -> BuildResult:
    """Run the whole style pipeline and write its outputs to ``out`` (see module docstring).

    ``backend`` (a ``CaptionBackend``) is needed only by the LLM neutralizer/prompter; ``texts``
    overrides ``cfg.source`` (for flows that already hold the texts)."""
    import pandas as pd

    from caption_gen.styles import cluster as cl
    from caption_gen.styles.bank import StyleEntry, style_id_for, write_style_bank
    from caption_gen.styles.embed import (
        ClipTextEmbedder,
        EmbeddingCache,
        combine_features,
        stylometric_features,
        text_sha256,
    )
    from caption_gen.styles.neutralize import content_survival, make_neutralizer
    from caption_gen.styles.prompts import LLMStylePrompter, cluster_statistics, statistics_prompts
    from caption_gen.styles.sources import load_style_texts

    out = Path(out)
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

    t = time.perf_counter()
    neutralizer = make_neutralizer(cfg.neutralizer, backend)
    neutral = neutralizer.neutralize(texts)
    survival = content_survival(texts, neutral)
    timings["neutralize_s"] = time.perf_counter() - t

    t = time.perf_counter()
    clip_vecs = None
    n_computed = 0
    embed_key = None
    if cfg.embed.use_clip and cfg.embed.w_clip > 0:
        embedder = ClipTextEmbedder(cfg.embed.model, cfg.embed.pretrained, batch_size=cfg.embed.batch_size,
                                    device=cfg.embed.device, seed=cfg.seed)
        cache = EmbeddingCache(cfg.embed.cache or out / "embeddings.parquet")
        embed_texts = neutral if cfg.embed.text == "neutralized" else texts
        clip_vecs, n_computed = cache.get_or_compute(embed_texts, embedder)
        embed_key = embedder.key
    timings["embed_s"] = time.perf_counter() - t
    t = time.perf_counter()
    stylo = stylometric_features(neutral) if cfg.embed.w_stylo > 0 else None
    feats = combine_features(clip_vecs, stylo, w_clip=cfg.embed.w_clip if clip_vecs is not None else 0.0,
                             w_stylo=cfg.embed.w_stylo)
    timings["stylometric_s"] = time.perf_counter() - t

    t = time.perf_counter()
    c = cfg.cluster
    z, pca = cl.reduce_dims(feats, c.pca_components, cfg.seed)
    timings["pca_s"] = time.perf_counter() - t
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
    t = time.perf_counter()
    min_size = c.min_cluster_size or cl.auto_min_cluster_size(n, c.min_cluster_share)
    labels, stab = cl.stabilize(z, fit.labels, min_size=min_size)
    sil = cl.silhouette_sampled(z, labels, sample=c.silhouette_sample, seed=cfg.seed)
    timings["stabilize_s"] = time.perf_counter() - t

    t = time.perf_counter()
    k = int(labels.max()) + 1 if n else 0
    rng = np.random.default_rng(cfg.seed)
    groups = [np.flatnonzero(labels == s) for s in range(k)]
    per_cluster = []
    for idx in groups:
        stats = cluster_statistics([texts[i] for i in idx], [neutral[i] for i in idx])
        ex = idx if len(idx) <= cfg.exemplars else np.sort(rng.choice(idx, cfg.exemplars, replace=False))
        per_cluster.append(([neutral[i] for i in ex], stats, ex))
    if cfg.prompter == "llm":
        if backend is None:
            raise ConfigError("prompter 'llm' needs a captioning backend")
        prompts = LLMStylePrompter(backend).write([(e, s) for e, s, _ in per_cluster])
    else:
        prompts = statistics_prompts([(e, s) for e, s, _ in per_cluster])
    timings["prompts_s"] = time.perf_counter() - t

    style_ids = [style_id_for(s) for s in range(k)]
    styles = [StyleEntry(style_id=style_ids[s], prompt=prompts[s][0], size=int(len(groups[s])),
                         share=float(len(groups[s]) / n), prompt_source=prompts[s][1]) for s in range(k)]
    cfg_hash = _config_hash(cfg)
    write_style_bank(styles, out, meta={"algorithm": c.algorithm, "source": origin, "texts": n,
                                        "config_sha256": cfg_hash})
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
    summary = {
        "source": {"origin": origin, "kind": kind, "texts": n, "skipped_empty": skipped},
        "algorithm": c.algorithm,
        "params": fit.params,
        "features": {"clip": embed_key, "w_clip": cfg.embed.w_clip if clip_vecs is not None else 0.0,
                     "w_stylo": cfg.embed.w_stylo, "dims": int(feats.shape[1]),
                     "pca_components": int(z.shape[1]) if pca is not None else None,
                     "pca_explained_variance": float(pca.explained_variance_ratio_.sum()) if pca is not None else None,
                     "embeddings_computed": n_computed, "embeddings_cached": n - n_computed if clip_vecs is not None else 0},
        "neutralizer": {"kind": cfg.neutralizer, "content_survival": survival,
                        "fallbacks": getattr(neutralizer, "fallbacks", {})},
        "quality": {"clusters_raw": stab["clusters_before"], "noise_share_before": stab["noise_share_before"],
                    "noise_reassigned": stab["noise_reassigned"], "merged": stab["merged"],
                    "min_cluster_size": min_size, "styles": k, "sizes": stab.get("sizes", []), "silhouette": sil},
        "extra": fit.extra,
        "prompt_sources": [p[1] for p in prompts],
        "exemplar_rows": [[int(i) for i in ex] for _, _, ex in per_cluster],
        "statistics": [s for _, s, _ in per_cluster],
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
    timings["total_s"] = time.perf_counter() - t0
    summary["timings"] = timings
    (out / "clustering.json").write_text(json.dumps(summary, indent=2, default=float) + "\n", encoding="utf-8")
    return BuildResult(out=out, n_texts=n, n_styles=k, labels=labels, summary=summary)


def _pca2(z: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    if z.shape[0] < 2 or z.shape[1] < 2:
        return np.zeros((z.shape[0], 2), np.float32)
    return PCA(n_components=2, random_state=seed).fit_transform(z).astype(np.float32)
