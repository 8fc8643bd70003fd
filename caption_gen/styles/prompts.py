"""Style prompts: one natural-language style instruction per cluster (seed 000 §3.3: "These discovered
style categories are then used to formulate textual prompts, such as 'Use a very detailed, descriptive
style'").

A prompt must say what makes *its* cluster different, otherwise the sub-clusters of a corpus all get
"a short, detailed style of about 23 words". So:

* :func:`corpus_contrast` — for each cluster, every describable stylometric feature
  (:data:`FEATURES`: sentence form, order of mention, voice, person, tense, length, punctuation) as
  the cluster mean vs the corpus mean, in corpus standard deviations (``z``), largest deviation first;
* :func:`contrast_prompt` — the deterministic prompt: the (at most ``max_features``) features that
  deviate most (``|z| ≥ min_z``), each phrased as an instruction with its value vs the corpus, plus the
  neutralized exemplar pattern (the cluster's medoid text, placeholders instead of content);
* :class:`LLMStylePrompter` — an LLM writes the instruction from the same contrast, the pattern and the
  cluster's neutralized exemplars (``templates/style_prompt.yaml``) through the backends' text-only
  path. Choice: an output that fails (error, cut, empty), is longer than ``max_words`` or is
  near-identical to another cluster's prompt (:func:`prompt_similarity` ≥ ``similarity_bound``) falls
  back to :func:`contrast_prompt`; the bank records each prompt's ``prompt_source``;
* :func:`prompt_similarity` — cosine of word 1–2-gram counts with digits masked, the measure of
  the bank's "no two prompts are near-identical" bound (:data:`SIMILARITY_BOUND`).

:func:`statistics_prompt` (the absolute description of one cluster, without contrast) is kept for
callers that have no corpus, e.g. a single-cluster bank.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from caption_gen.styles.embed import STYLO_FEATURES, stylometric_features

#: Two prompts of one bank must be less similar than this (:func:`prompt_similarity`).
SIMILARITY_BOUND = 0.8


@dataclass(frozen=True)
class FeatureInfo:
    label: str
    kind: str  # words | count | rate | share (of texts/sentences, shown as %)
    high: str
    low: str


#: Describable features: label, value kind and the instruction for a cluster above / below the corpus.
#: ``{v}`` is the cluster's value, ``{c}`` the corpus value (formatted by kind).
FEATURES: dict[str, FeatureInfo] = {
    "log_words": FeatureInfo("length (words)", "words", "write long descriptions of about {v} words (corpus: {c})",
                             "keep it short, about {v} words (corpus: {c})"),
    "sentences": FeatureInfo("sentences", "count", "use several sentences, about {v} (corpus: {c})",
                             "use fewer sentences, about {v} (corpus: {c})"),
    "words_per_sentence": FeatureInfo("words per sentence", "count",
                                      "make each sentence long, about {v} words (corpus: {c})",
                                      "keep each sentence short, about {v} words (corpus: {c})"),
    "comma_rate": FeatureInfo("commas per word", "rate", "chain the details with commas ({v} commas per word, corpus: {c})",
                              "use few commas ({v} per word, corpus: {c})"),
    "semicolon_colon_rate": FeatureInfo("semicolons/colons per word", "rate",
                                        "separate the items with semicolons or colons ({v} per word, corpus: {c})",
                                        "do not use semicolons or colons"),
    "second_person_rate": FeatureInfo("second-person words per word", "rate",
                                      "address the reader directly with 'you' ({v} per word, corpus: {c})",
                                      "do not address the reader"),
    "head_first": FeatureInfo("hair/head before clothing", "share",
                              "mention the hair and head before the clothing ({v} of texts, corpus: {c})",
                              "do not begin with the hair or head ({v} of texts do, corpus: {c})"),
    "clothing_first": FeatureInfo("clothing before hair/head", "share",
                                  "mention the clothing before the hair ({v} of texts, corpus: {c})",
                                  "do not begin with the clothing ({v} of texts do, corpus: {c})"),
    "feet_last": FeatureInfo("footwear after clothing", "share", "end with the footwear ({v} of texts, corpus: {c})",
                             "do not leave the footwear for the end ({v} of texts do, corpus: {c})"),
    "fragment_length": FeatureInfo("words between punctuation marks", "count",
                                   "use long clauses, about {v} words between punctuation marks (corpus: {c})",
                                   "keep every fragment to about {v} words (corpus: {c})"),
    "verb_rate": FeatureInfo("verbs per word", "rate", "use full clauses with verbs ({v} per word, corpus: {c})",
                             "leave out verbs and list noun phrases ({v} verbs per word, corpus: {c})"),
    "detail_density": FeatureInfo("attribute details per word", "rate",
                                  "pack many attribute details into few words ({v} per word, corpus: {c})",
                                  "spread the details over more words ({v} per word, corpus: {c})"),
    "starts_with_article": FeatureInfo("starts with an article", "share",
                                       "begin with an article such as 'A' or 'The' ({v} of texts, corpus: {c})",
                                       "do not begin with an article ({v} of texts do, corpus: {c})"),
    "question_share": FeatureInfo("questions (share of sentences)", "share",
                                  "ask questions ({v} of sentences end with '?', corpus: {c})", "ask no questions"),
    "exclamation_share": FeatureInfo("exclamations (share of sentences)", "share",
                                     "use exclamations ({v} of sentences end with '!', corpus: {c})",
                                     "use no exclamation marks"),
    "first_person_rate": FeatureInfo("first-person words per word", "rate",
                                     "write as an eyewitness in the first person, 'I saw ...' ({v} per word, corpus: {c})",
                                     "do not write in the first person"),
    "third_person_rate": FeatureInfo("pronouns (he/she/they) per word", "rate",
                                     "refer back to the person with pronouns ({v} per word, corpus: {c})",
                                     "avoid pronouns ({v} per word, corpus: {c})"),
    "past_tense_rate": FeatureInfo("past-tense verbs per word", "rate", "use the past tense ({v} per word, corpus: {c})",
                                   "use the present tense ({v} past-tense verbs per word, corpus: {c})"),
    "passive_rate": FeatureInfo("passive clauses per sentence", "rate",
                                "prefer the passive voice, '... is worn' ({v} per sentence, corpus: {c})",
                                "use the active voice"),
    "participial_opening": FeatureInfo("opens with a participle", "share",
                                       "open with a participle phrase such as 'Dressed in ...,' ({v} of texts, corpus: {c})",
                                       "do not open with a participle ({v} of texts do, corpus: {c})"),
    "person_first": FeatureInfo("names the person first", "share",
                                "name the person before anything else ({v} of texts, corpus: {c})",
                                "name the person only after the clothing or hair ({v} of texts name it first, corpus: {c})"),
    "no_final_stop": FeatureInfo("no final full stop", "share",
                                 "leave out the final full stop ({v} of texts, corpus: {c})",
                                 "end with a full stop ({v} of texts do not, corpus: {c})"),
}


def _fmt(kind: str, value: float) -> str:
    if kind == "words":
        return f"{value:.0f}"
    if kind == "count":
        return f"{value:.1f}".removesuffix(".0")
    if kind == "share":
        return f"{value:.0%}"
    return f"{value:.2f}"


def _display(name: str, column: np.ndarray) -> float:
    """Mean of a feature column in display units (``log_words`` → mean word count)."""
    if name == "log_words":
        return float(np.mean(np.expm1(column)))
    return float(np.mean(column))


@dataclass(frozen=True)
class Deviation:
    """One feature of a cluster vs the corpus."""

    feature: str
    label: str
    value: float  # cluster mean (display units)
    corpus: float  # corpus mean (display units)
    z: float  # (cluster mean - corpus mean) / corpus sd, on the raw feature
    value_text: str
    corpus_text: str
    instruction: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def corpus_contrast(stylo: np.ndarray, labels: np.ndarray) -> list[list[Deviation]]:
    """Per cluster ``0..k-1``: every :data:`FEATURES` feature as a :class:`Deviation`, largest ``|z|``
    first. ``stylo`` is the raw :func:`stylometric_features` matrix of the whole corpus."""
    stylo = np.asarray(stylo, np.float64)
    labels = np.asarray(labels)
    mu, sd = stylo.mean(axis=0), stylo.std(axis=0)
    k = int(labels.max()) + 1 if labels.size else 0
    out: list[list[Deviation]] = []
    for c in range(k):
        rows = stylo[labels == c]
        devs = []
        for name, info in FEATURES.items():
            j = STYLO_FEATURES.index(name)
            z = 0.0 if sd[j] < 1e-9 or rows.size == 0 else float((rows[:, j].mean() - mu[j]) / sd[j])
            v, cv = _display(name, rows[:, j]) if rows.size else 0.0, _display(name, stylo[:, j])
            vt, ct = _fmt(info.kind, v), _fmt(info.kind, cv)
            phrase = (info.high if z > 0 else info.low).format(v=vt, c=ct)
            devs.append(Deviation(name, info.label, v, cv, z, vt, ct, phrase))
        # largest |z| first; ties (common with few clusters) by the relative difference of the means
        devs.sort(key=lambda d: (-round(abs(d.z), 2), -abs(d.value - d.corpus) / (abs(d.corpus) + 1e-3)))
        out.append(devs)
    return out


def distinguishing(devs: Sequence[Deviation], *, min_z: float = 0.5, max_features: int = 4,
                   min_relative: float = 0.1) -> list[Deviation]:
    """The features that set a cluster apart: ``|z| ≥ min_z``, at most ``max_features``. Skipped: a
    feature whose instruction duplicates an earlier one's meaning (head first vs clothing first), and a
    non-share feature whose mean differs from the corpus by less than ``min_relative`` of the corpus
    value (a narrow corpus makes tiny differences look large in sd: 0.41 vs 0.43 is not a style)."""
    chosen: list[Deviation] = []
    exclusive = {"head_first": "clothing_first", "clothing_first": "head_first"}
    for d in devs:
        if abs(d.z) < min_z or len(chosen) >= max_features:
            break
        if any(c.feature == exclusive.get(d.feature) for c in chosen):
            continue
        if FEATURES[d.feature].kind != "share" and abs(d.value - d.corpus) < min_relative * abs(d.corpus):
            continue
        chosen.append(d)
    return chosen


def signature(devs: Sequence[Deviation]) -> tuple[str, ...]:
    """What a prompt says about a cluster, as a set: the distinguishing features with their direction."""
    return tuple(sorted(f"{d.feature}{'+' if d.z > 0 else '-'}" for d in devs))


def exemplar_pattern(text: str, max_words: int = 45) -> str:
    """A neutralized exemplar shortened to ``max_words`` words (content is already placeholders)."""
    words = text.split()
    return " ".join(words[:max_words]) + (" …" if len(words) > max_words else "")


def contrast_prompt(devs: Sequence[Deviation], pattern: str) -> str:
    """The deterministic style prompt (see module docstring)."""
    if devs:
        body = "; ".join(d.instruction for d in devs)
        lead = f"Unlike most descriptions, {body}."
    else:
        lead = "Write the way most descriptions here are written; no feature sets this style apart."
    return f"{lead} Follow this pattern: \"{pattern}\""


_TOKEN = re.compile(r"[a-z']+|\[[a-z]+\]|#")


def _grams(text: str) -> Counter[str]:
    toks = _TOKEN.findall(re.sub(r"\d+(?:\.\d+)?%?", "#", text.lower()))
    return Counter(toks) + Counter(" ".join(p) for p in zip(toks, toks[1:], strict=False))


def prompt_similarity(a: str, b: str) -> float:
    """Cosine similarity of word 1–2-gram counts (digits masked, so "about 23 words" equals "about 25
    words"); 1.0 for identical prompts."""
    ga, gb = _grams(a), _grams(b)
    dot = sum(v * gb.get(k, 0) for k, v in ga.items())
    na = math.sqrt(sum(v * v for v in ga.values()))
    nb = math.sqrt(sum(v * v for v in gb.values()))
    return dot / (na * nb) if na and nb else float(a.strip() == b.strip())


def max_pairwise_similarity(prompts: Sequence[str]) -> tuple[float, tuple[int, int] | None]:
    """The most similar two prompts of a bank: ``(similarity, (i, j))``; ``(0.0, None)`` below two."""
    best, pair = 0.0, None
    for i in range(len(prompts)):
        for j in range(i + 1, len(prompts)):
            sim = prompt_similarity(prompts[i], prompts[j])
            if pair is None or sim > best:
                best, pair = sim, (i, j)
    return best, pair


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


def format_contrast(devs: Sequence[Deviation]) -> str:
    """The distinguishing features as lines for the LLM prompt writer."""
    if not devs:
        return "- (no feature deviates from the corpus)"
    return "\n".join(f"- {d.label}: {d.value_text} in this style vs {d.corpus_text} in the corpus "
                     f"({'higher' if d.z > 0 else 'lower'}, {abs(d.z):.1f} sd) -> {d.instruction}" for d in devs)


@dataclass
class ClusterBrief:
    """What a prompt writer knows about one cluster."""

    exemplars: Sequence[str]  # neutralized
    statistics: dict[str, float]
    contrast: Sequence[Deviation] = ()  # the distinguishing features
    pattern: str = ""  # the neutralized exemplar pattern


def _brief(item: Any) -> ClusterBrief:
    if isinstance(item, ClusterBrief):
        return item
    ex, st = item[0], item[1]
    return ClusterBrief(ex, st, item[2] if len(item) > 2 else (), item[3] if len(item) > 3 else "")


def fallback_prompt(brief: ClusterBrief) -> str:
    """:func:`contrast_prompt` when the brief carries a contrast or pattern, else :func:`statistics_prompt`."""
    if brief.contrast or brief.pattern:
        return contrast_prompt(brief.contrast, brief.pattern)
    return statistics_prompt(brief.statistics)


class LLMStylePrompter:
    """Writes one style instruction per cluster with an LLM backend, from the cluster's contrast with the
    corpus, its pattern and exemplars; falls back to :func:`fallback_prompt`."""

    def __init__(self, backend: Any, *, prompt_file: str = "style_prompt.yaml", exemplars: int = 8,
                 max_words: int = 90, similarity_bound: float = SIMILARITY_BOUND,
                 sampling: dict[str, Any] | None = None) -> None:
        from caption_gen.styles.llm import PromptTemplate

        self.backend = backend
        self.prompt = PromptTemplate.load(prompt_file)
        self.exemplars = exemplars
        self.max_words = max_words
        self.similarity_bound = similarity_bound
        self.sampling = dict(self.prompt.sampling, **(sampling or {}))
        self.fallbacks: dict[str, int] = {}
        self.rendered: list[str] = []

    def write(self, clusters: Sequence[Any]) -> list[tuple[str, str]]:
        """``clusters``: :class:`ClusterBrief` (or ``(neutralized exemplars, statistics)``) per cluster →
        ``(prompt, source)`` per cluster."""
        from caption_gen.styles.llm import generate_texts

        briefs = [_brief(c) for c in clusters]
        self.rendered = [self.prompt.render(statistics=_format_stats(b.statistics), contrast=format_contrast(b.contrast),
                                            pattern=b.pattern or "-", exemplars=_exemplar_block(b.exemplars, self.exemplars))
                         for b in briefs]
        outputs = generate_texts(self.backend, self.rendered, system=self.prompt.system, **self.sampling)
        result: list[tuple[str, str]] = []
        accepted: list[str] = []
        for b, (text, reason) in zip(briefs, outputs, strict=True):
            cleaned = " ".join(text.strip().strip("\"'").split()) if text else ""
            if cleaned.lower().startswith("instruction:"):
                cleaned = cleaned[len("instruction:"):].strip()
            if reason is None and (not cleaned or len(cleaned.split()) > self.max_words):
                reason = "too_long" if cleaned else "empty"
            if reason is None and any(prompt_similarity(cleaned, p) >= self.similarity_bound for p in accepted):
                reason = "near_duplicate"
            if reason is not None:
                self.fallbacks[reason] = self.fallbacks.get(reason, 0) + 1
                result.append((fallback_prompt(b), "statistics"))
            else:
                accepted.append(cleaned)
                result.append((cleaned, "llm"))
        return result


def statistics_prompts(clusters: Sequence[Any]) -> list[tuple[str, str]]:
    """Deterministic prompts for all clusters (:func:`fallback_prompt`)."""
    return [(fallback_prompt(_brief(c)), "statistics") for c in clusters]
