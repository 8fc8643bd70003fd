"""TDE template mining (seed 002 §3.1, automated).

Seed 002 fed MLLM captions to ChatGPT "to capture their sentence patterns (i.e. description
templates)" and then asked for more, by hand, ending with 46 templates. Here:

1. each caption becomes a template with typed slots (``[clothing description]``,
   ``[hair description]``, ``[footwear description]``, ``[belongings description]``,
   ``[accessory description]``, ``[person/woman/man]`` ...): by an LLM through the captioning backends'
   text-only path (:class:`LLMTemplateMiner`, prompt ``templates/mining_prompt.yaml``) or by the
   deterministic :func:`rule_template` (lexicon spans → slots; offline and in tests);
2. the captioning engine's slot parser (:func:`caption_gen.instructions.slots.parse_template`)
   validates every candidate; invalid ones are kept as rejects with the parser's reason;
   Before validation every candidate (LLM or rules) is cleaned by :func:`clean_template`: a pronoun
   next to the ``[person/woman/man]`` slot is removed ("her [person/woman/man]" → "the
   [person/woman/man]", "[person/woman/man], she wears" → "[person/woman/man] wears") and a slot
   repeated within a few words ("[hair description] in [hair description]") collapses into one;
   :func:`template_defects` then rejects what cleaning could not fix;
3. near-duplicates are removed (:func:`dedup_templates`): first exact duplicates of the normalized
   text (case, punctuation, whitespace and articles ignored), then embedding near-duplicates —
   cosine similarity ≥ ``threshold`` between character 3–5-gram TF-IDF vectors (choice: cheap,
   deterministic and sensitive to wording, which is what a sentence *pattern* is; the CLIP text tower
   can be used instead by passing ``embed=`` a function returning L2-normalized vectors). The first
   (most frequent) template of a near-duplicate group survives and counts the others as ``support``;
4. the survivors are written as a template bank (:func:`write_template_bank`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from caption_gen.instructions.bank import BankDuplicate, check_bank_with_duplicates  # noqa: F401 (re-exported)
from caption_gen.instructions.slots import SLOT_TYPES, TemplateError, parse_template
from caption_gen.styles.lexicons import LEXICONS

PERSON_SLOT = "[person/woman/man]"
_PERSON = r"(?:man|woman|person|lady|guy|girl|boy|gentleman|pedestrian|male|female|men|women|people|child|kid)"
_ADJ_WORDS = sorted(set(LEXICONS["color"]) | set(LEXICONS["material"]) | {
    "long", "short", "medium", "small", "large", "big", "little", "loose", "tight", "slim", "baggy", "casual",
    "formal", "sleeveless", "short-sleeved", "long-sleeved", "thin", "thick", "light-colored", "dark-colored",
    "new", "old", "plain", "simple", "high", "low", "knee-length", "ankle-length", "ripped", "faded", "hooded",
    "curly", "wavy", "straight", "shoulder-length", "messy", "neat", "tied", "brown", "sports", "running",
}, key=len, reverse=True)
_ADJ = r"(?:(?:" + "|".join(re.escape(a) for a in _ADJ_WORDS) + r")(?:[\s,]+|-))"


def _nouns(*groups: str) -> str:
    words = sorted({w for g in groups for w in LEXICONS[g]}, key=len, reverse=True)
    return "(?:" + "|".join(re.escape(w).replace(r"\ ", r"[\s-]+") for w in words) + r")(?:e?s)?"


_DET = r"(?:(?:a pair of|pairs of|a|an|the|some|his|her|their)\s+)?"
_SLOT_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("[hair description]", re.compile(rf"\b{_DET}{_ADJ}*(?:hair(?:style)?|ponytail|pony tail|braids?|bun)\b", re.I)),
    ("[footwear description]", re.compile(rf"\b{_DET}{_ADJ}*{_nouns('footwear')}\b", re.I)),
    ("[belongings description]", re.compile(rf"\b{_DET}{_ADJ}*{_nouns('belongings')}\b", re.I)),
    ("[accessory description]", re.compile(rf"\b{_DET}{_ADJ}*{_nouns('accessory')}\b", re.I)),
    ("[clothing description]", re.compile(rf"\b{_DET}{_ADJ}*{_nouns('garment')}\b", re.I)),
]
_PERSON_RE = re.compile(rf"\b{_ADJ}*{_PERSON}\b", re.I)
_SLOT_TOKEN = r"\[[a-z/ ]+\]"


def rule_template(caption: str) -> str | None:
    """Deterministic slotting: lexicon spans (with their determiners and adjectives) → typed slots, the
    subject noun → ``[person/woman/man]``; runs of the same slot joined by ``,``/``and``/``with`` collapse
    into one slot. ``None`` when no slot could be placed."""
    text = " ".join(caption.split())
    protected: list[str] = []

    def keep(slot: str) -> str:
        protected.append(slot)
        return f"\x00{len(protected) - 1}\x00"

    for slot, pattern in _SLOT_RULES:
        text = pattern.sub(lambda _m, s=slot: keep(s), text)
    text = _PERSON_RE.sub(lambda _m: keep(PERSON_SLOT), text, count=1)
    text = re.sub(r"\x00(\d+)\x00", lambda m: protected[int(m.group(1))], text)
    for slot in {s for s, _ in _SLOT_RULES}:
        esc = re.escape(slot)
        text = re.sub(rf"{esc}(?:\s*(?:,\s*(?:and\s+)?|and\s+|with\s+)\s*{esc})+", slot, text)
    if "[" not in text:
        return None
    return text[0].upper() + text[1:] if text else None


_PRONOUNS = r"(?:he|she|they|his|her|hers|him|them|their|theirs|it|its)"
_ANY_SLOT = re.compile(r"\[[a-z/ ]+\]")


def clean_template(text: str) -> str:
    """Repairs applied to every mined template (module docstring, step 1)."""
    slot = re.escape(PERSON_SLOT)
    t = " ".join(text.split())
    # "Her [person]" / "his [person]" → "The [person]" / "the [person]"
    t = re.sub(rf"\b{_PRONOUNS}\s+(?={slot})", lambda m: "The " if m.group(0)[0].isupper() else "the ", t, flags=re.I)
    # "[person] she is" / "[person], she is" → "[person] is"
    t = re.sub(rf"({slot})\s*,?\s+{_PRONOUNS}\b(?=\s)", r"\1", t, flags=re.I)
    # "She is a [person], she wears" → "A [person] wears": a leading "<pronoun> is" before the slot's article
    t = re.sub(rf"^{_PRONOUNS}\s+(?:is|was|are|were)\s+(?=(?:a|an|the)\b[^.]*{slot})", "", t, flags=re.I)
    # the same slot twice within three words, no sentence end between: keep one
    for name in {m.group(0) for m in _ANY_SLOT.finditer(t)}:
        esc = re.escape(name)
        t = re.sub(rf"{esc}(?:[\s,]+(?:[a-z'-]+[\s,]+){{0,3}}){esc}", name, t)
    t = " ".join(t.split())
    return t[0].upper() + t[1:] if t else t


def template_defects(text: str) -> list[str]:
    """Defects a mined template must not have: a pronoun next to the person slot, or one slot repeated
    within three words."""
    out = []
    slot = re.escape(PERSON_SLOT)
    if re.search(rf"\b{_PRONOUNS}\s+{slot}|{slot}\s*,?\s+{_PRONOUNS}\b", text, flags=re.I):
        out.append("pronoun next to the [person/woman/man] slot")
    for name in {m.group(0) for m in _ANY_SLOT.finditer(text)}:
        esc = re.escape(name)
        if re.search(rf"{esc}(?:[\s,]+(?:[a-z'-]+[\s,]+){{0,3}}){esc}", text):
            out.append(f"repeated slot {name}")
    return out


def normalize_template(text: str) -> str:
    """Normalization for exact-duplicate detection: lower case, no punctuation/articles, single spaces."""
    t = text.lower()
    t = re.sub(r"[^\w\[\]/ ]+", " ", t)
    t = re.sub(r"\b(?:a|an|the)\b", " ", t)
    return " ".join(t.split())


def tfidf_embed(texts: Sequence[str]) -> np.ndarray:
    """L2-normalized character 3–5-gram TF-IDF vectors (sparse), the default near-duplicate embedding."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=True).fit_transform(list(texts))


@dataclass
class MinedTemplate:
    template_id: str
    text: str
    slots: list[str]
    support: int = 1
    source: str = "rules"
    example: str = ""


@dataclass
class MiningResult:
    templates: list[MinedTemplate]
    rejects: list[dict[str, str]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def dedup_templates(
    candidates: Sequence[MinedTemplate], *, threshold: float = 0.92,
    embed: Callable[[Sequence[str]], Any] | None = None,
) -> tuple[list[MinedTemplate], dict[str, int]]:
    """Exact (normalized-text) then embedding near-duplicate removal; order = support descending, then
    first appearance. Returns ``(survivors, counts)``."""
    groups: dict[str, MinedTemplate] = {}
    for cand in candidates:
        key = normalize_template(cand.text)
        if key in groups:
            groups[key].support += cand.support
        else:
            groups[key] = MinedTemplate(**asdict(cand))
    uniq = sorted(groups.values(), key=lambda t: -t.support)  # stable: ties keep first appearance
    counts = {"candidates": len(candidates), "after_exact": len(uniq)}
    if len(uniq) <= 1:
        counts["after_near"] = len(uniq)
        return uniq, counts
    vecs = (embed or tfidf_embed)([t.text for t in uniq])
    kept: list[int] = []
    for i in range(len(uniq)):
        if kept:
            sims = vecs[kept] @ vecs[i].T
            sims = np.asarray(sims.todense() if hasattr(sims, "todense") else sims).ravel()
            j = int(np.argmax(sims))
            if sims[j] >= threshold:
                uniq[kept[j]].support += uniq[i].support
                continue
        kept.append(i)
    survivors = sorted((uniq[i] for i in kept), key=lambda t: -t.support)
    counts["after_near"] = len(survivors)
    return survivors, counts


class LLMTemplateMiner:
    """Caption → template with an LLM backend (text-only path)."""

    def __init__(self, backend: Any, *, prompt_file: str = "mining_prompt.yaml", batch_size: int = 64,
                 sampling: dict[str, Any] | None = None) -> None:
        from caption_gen.styles.llm import PromptTemplate

        self.backend = backend
        self.prompt = PromptTemplate.load(prompt_file)
        self.batch_size = batch_size
        self.sampling = dict(self.prompt.sampling, **(sampling or {}))

    def templates(self, captions: Sequence[str]) -> list[tuple[str | None, str | None]]:
        from caption_gen.styles.llm import generate_texts

        slots = "\n".join(f"  [{name}]: {desc}" for name, desc in SLOT_TYPES.items())
        prompts = [self.prompt.render(slots=slots, caption=c) for c in captions]
        out = generate_texts(self.backend, prompts, system=self.prompt.system, batch_size=self.batch_size,
                             **self.sampling)
        cleaned: list[tuple[str | None, str | None]] = []
        for text, reason in out:
            if text is None:
                cleaned.append((None, f"llm:{reason}"))
                continue
            t = text.strip().splitlines()[0].strip() if text.strip() else ""
            if t.lower().startswith("template:"):
                t = t[len("template:"):].strip()
            cleaned.append((t.strip("\"'") or None, None if t else "llm:empty"))
        return cleaned


def mine_templates(
    captions: Sequence[str], *, backend: Any = None, fallback_rules: bool = True, threshold: float = 0.92,
    embed: Callable[[Sequence[str]], Any] | None = None, max_templates: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> MiningResult:
    """Mine a TDE template bank from ``captions`` (see module docstring). With ``backend`` the LLM writes
    the templates; a failed or invalid LLM output falls back to :func:`rule_template` when
    ``fallback_rules`` (the reject keeps the LLM's reason either way). ``progress(done, total)`` follows
    the captions as they are turned into templates (the LLM's batch reports once, when it returns)."""
    rejects: list[dict[str, str]] = []
    raw: list[tuple[str | None, str, str | None]] = []  # (template, source, failure)
    total = len(captions)
    if backend is not None:
        raw = [(tpl, "llm", reason) for tpl, reason in LLMTemplateMiner(backend).templates(captions)]
        if progress is not None:
            progress(total, total)
    else:
        for i, c in enumerate(captions, 1):
            raw.append((rule_template(c), "rules", None))
            if progress is not None and (i % 64 == 0 or i == total):
                progress(i, total)
    cands: list[MinedTemplate] = []
    fallbacks = 0
    repaired = 0
    for cap, (tpl, source, reason) in zip(captions, raw, strict=True):
        parsed = None
        if tpl is not None:
            cleaned = clean_template(tpl)
            repaired += cleaned != " ".join(tpl.split())
            defects = template_defects(cleaned)
            tpl = cleaned
            try:
                if defects:
                    raise TemplateError("; ".join(defects))
                parsed = parse_template(tpl)
            except TemplateError as exc:
                reason = f"slots:{exc}"
        elif reason is None:
            reason = "rules:no slot found"
        if parsed is None:
            rejects.append({"caption": cap, "template": tpl or "", "reason": reason or "invalid"})
            if source == "llm" and fallback_rules:
                alt = rule_template(cap)
                alt = clean_template(alt) if alt else None
                try:
                    parsed = parse_template(alt) if alt and not template_defects(alt) else None
                    source = "rules-fallback"
                    fallbacks += 1
                except TemplateError:
                    parsed = None
            if parsed is None:
                continue
        cands.append(MinedTemplate(template_id=parsed.template_id, text=parsed.text, slots=list(parsed.slots),
                                   source=source, example=cap))
    survivors, counts = dedup_templates(cands, threshold=threshold, embed=embed)
    if max_templates is not None:
        survivors = survivors[:max_templates]
    stats = {"captions": len(captions), "valid": len(cands), "rejected": len(rejects), "llm_fallbacks": fallbacks,
             "repaired": repaired,
             **counts, "written": len(survivors),
             "rejects_by_reason": dict(Counter(r["reason"].split(":")[0] for r in rejects))}
    return MiningResult(templates=survivors, rejects=rejects, stats=stats)


def write_deduplicated_bank(templates: Sequence[Any], out: str | Path) -> Path:
    """The good templates of a checked bank as a bank file (``.txt``: one per line; else YAML ``templates:``)."""
    import yaml

    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".txt":
        text = "".join(t.text + "\n" for t in templates)
    elif path.suffix == ".json":
        text = json.dumps({"templates": [t.text for t in templates]}, indent=2, ensure_ascii=False) + "\n"
    else:
        text = yaml.safe_dump({"version": "1", "templates": [t.text for t in templates]}, sort_keys=False,
                              allow_unicode=True, width=1000)
    path.write_text(text, encoding="utf-8")
    return path


def write_template_bank(result: MiningResult, out: str | Path, *, source: str | None = None) -> Path:
    """Write the mined bank. ``.txt`` → one template per line; otherwise JSON::

        {"format": "pedes-template-bank", "version": "tb1-<sha12>", "created_at": ..., "source": ...,
         "stats": {...}, "templates": [{"template_id", "text", "slots", "support", "source", "example"}, ...]}

    Every template passed :func:`parse_template`, so the captioning engine's loader accepts it."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    canon = "\n".join(t.text for t in result.templates)
    version = "tb1-" + hashlib.sha256(canon.encode("utf-8")).hexdigest()[:12]
    if path.suffix == ".txt":
        text = canon + "\n"
    else:
        doc = {"format": "pedes-template-bank", "version": version,
               "created_at": _dt.datetime.now(_dt.UTC).isoformat(), "source": source, "stats": result.stats,
               "templates": [asdict(t) for t in result.templates]}
        text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    if result.rejects:
        rej = path.with_name(path.stem + ".rejects.jsonl")
        rej.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in result.rejects), encoding="utf-8")
    return path
