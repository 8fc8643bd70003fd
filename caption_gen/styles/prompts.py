"""Style prompts: one natural-language style instruction per cluster (seed 000 §3.3: "These discovered
style categories are then used to formulate textual prompts, such as 'Use a very detailed, descriptive
style'").

* :func:`cluster_statistics` — content-free statistics of a cluster's texts (length band, sentences,
  ordering head-to-toe vs clothing-first, sentence form, point of view, detail level).
* :func:`statistics_prompt` — the deterministic fallback: the statistics turned into an instruction.
* :class:`LLMStylePrompter` — an LLM writes the instruction from the cluster's neutralized exemplars and
  statistics (``templates/style_prompt.yaml``) through the backends' text-only path. Choice: an output
  that fails (error, cut, empty), is longer than ``max_words`` or repeats another cluster's prompt
  falls back to :func:`statistics_prompt`; the bank records each prompt's ``prompt_source``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from caption_gen.styles.embed import STYLO_FEATURES, stylometric_features


def cluster_statistics(texts: Sequence[str], neutralized: Sequence[str] | None = None) -> dict[str, float]:
    """Median/mean stylometric figures of a cluster (computed on ``neutralized`` when given, so that
    detail density counts placeholders)."""
    base = neutralized if neutralized is not None else texts
    feats = stylometric_features(base)
    col = {name: feats[:, i] for i, name in enumerate(STYLO_FEATURES)}
    words = np.array([len(t.split()) for t in texts], dtype=np.float64)
    return {
        "texts": float(len(texts)),
        "median_words": float(np.median(words)) if len(words) else 0.0,
        "p10_words": float(np.percentile(words, 10)) if len(words) else 0.0,
        "p90_words": float(np.percentile(words, 90)) if len(words) else 0.0,
        "median_sentences": float(np.median(col["sentences"])) if len(words) else 0.0,
        "words_per_sentence": float(np.median(col["words_per_sentence"])) if len(words) else 0.0,
        "comma_rate": float(np.mean(col["comma_rate"])) if len(words) else 0.0,
        "second_person_share": float(np.mean(col["second_person_rate"] > 0)) if len(words) else 0.0,
        "head_first_share": float(np.mean(col["head_first"])) if len(words) else 0.0,
        "clothing_first_share": float(np.mean(col["clothing_first"])) if len(words) else 0.0,
        "fragment_length": float(np.median(col["fragment_length"])) if len(words) else 0.0,
        "verb_rate": float(np.mean(col["verb_rate"])) if len(words) else 0.0,
        "detail_density": float(np.mean(col["detail_density"])) if len(words) else 0.0,
    }


def _length_band(words: float) -> str:
    if words < 15:
        return "very short"
    if words < 30:
        return "short"
    if words < 55:
        return "medium-length"
    if words < 90:
        return "long"
    return "very long"


def statistics_prompt(stats: dict[str, float]) -> str:
    """Deterministic style instruction from :func:`cluster_statistics` (the offline fallback)."""
    words = stats["median_words"]
    band = _length_band(words)
    detail = stats["detail_density"]
    if detail >= 0.35:
        detail_txt = "very detailed, attribute-dense"
    elif detail >= 0.2:
        detail_txt = "detailed, descriptive"
    else:
        detail_txt = "plain, sparing"
    if stats["verb_rate"] < 0.02 and stats["fragment_length"] <= 6:
        form = "a terse comma-separated list of attributes without full sentences"
    elif stats["median_sentences"] <= 1.0:
        form = "a single flowing sentence"
    elif stats["words_per_sentence"] < 10:
        form = f"about {int(round(stats['median_sentences']))} short sentences"
    else:
        form = f"about {int(round(stats['median_sentences']))} full sentences"
    parts = [f"Use a {band}, {detail_txt} style of about {int(round(words))} words, written as {form}."]
    if stats["second_person_share"] >= 0.5:
        parts.append("Address the reader directly in the second person (\"you will see ...\").")
    if stats["head_first_share"] >= 0.6:
        parts.append("Describe the person from head to toe, starting with the hair and head.")
    elif stats["clothing_first_share"] >= 0.6:
        parts.append("Start with the clothing, then mention the rest.")
    return " ".join(parts)


def _exemplar_block(exemplars: Sequence[str], limit: int) -> str:
    return "\n".join(f"- {e}" for e in list(exemplars)[:limit])


def _format_stats(stats: dict[str, float]) -> str:
    return (
        f"median {stats['median_words']:.0f} words, {stats['median_sentences']:.0f} sentence(s), "
        f"{stats['comma_rate']:.2f} commas per word, second person in {stats['second_person_share']:.0%}, "
        f"head-first order in {stats['head_first_share']:.0%}, clothing-first in {stats['clothing_first_share']:.0%}"
    )


class LLMStylePrompter:
    """Writes one style instruction per cluster with an LLM backend; falls back to statistics."""

    def __init__(self, backend: Any, *, prompt_file: str = "style_prompt.yaml", exemplars: int = 8,
                 max_words: int = 60, sampling: dict[str, Any] | None = None) -> None:
        from caption_gen.styles.llm import PromptTemplate

        self.backend = backend
        self.prompt = PromptTemplate.load(prompt_file)
        self.exemplars = exemplars
        self.max_words = max_words
        self.sampling = dict(self.prompt.sampling, **(sampling or {}))
        self.fallbacks: dict[str, int] = {}

    def write(self, clusters: Sequence[tuple[Sequence[str], dict[str, float]]]) -> list[tuple[str, str]]:
        """``clusters``: (neutralized exemplars, statistics) per cluster → ``(prompt, source)`` per cluster."""
        from caption_gen.styles.llm import generate_texts

        prompts = [self.prompt.render(statistics=_format_stats(st), exemplars=_exemplar_block(ex, self.exemplars))
                   for ex, st in clusters]
        outputs = generate_texts(self.backend, prompts, system=self.prompt.system, **self.sampling)
        result: list[tuple[str, str]] = []
        seen: set[str] = set()
        for (_, st), (text, reason) in zip(clusters, outputs, strict=True):
            cleaned = " ".join(text.strip().strip("\"'").split()) if text else ""
            if cleaned.lower().startswith("instruction:"):
                cleaned = cleaned[len("instruction:"):].strip()
            if reason is None and (not cleaned or len(cleaned.split()) > self.max_words):
                reason = "too_long" if cleaned else "empty"
            if reason is None and cleaned.lower() in seen:
                reason = "duplicate"
            if reason is not None:
                self.fallbacks[reason] = self.fallbacks.get(reason, 0) + 1
                result.append((statistics_prompt(st), "statistics"))
            else:
                seen.add(cleaned.lower())
                result.append((cleaned, "llm"))
        return result


def statistics_prompts(clusters: Sequence[tuple[Sequence[str], dict[str, float]]]) -> list[tuple[str, str]]:
    """Fallback prompts for all clusters; identical prompts get their exact length band appended so
    every style in a bank stays distinct."""
    out: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for _, st in clusters:
        p = statistics_prompt(st)
        if p in seen:
            p = f"{p} Keep most descriptions between {int(st['p10_words'])} and {int(st['p90_words'])} words."
        seen[p] = seen.get(p, 0) + 1
        out.append((p, "statistics"))
    return out
