"""Caption instructions: static, dynamic (TDE), identity, clothing, optionally styled.

The texts are data (``templates/instructions.yaml``, versioned); this module loads them, validates the
TDE template bank (``templates/tde_templates.yaml`` by default) and renders one :class:`Instruction`
per (image, kind).

* ``static``  — seed 002 §3.1 "Instruction Design": the fixed instruction T^s.
* ``dynamic`` — seed 002 §3.1 "Diversity Enhancement": the dynamic instruction T^d with one template
  inserted at ``{template}``. The paper "randomly select[s] one of the templates" for each instruction it
  sends, i.e. per MLLM call: its two MLLMs (Qwen, Shikra) each get their own draw for the same image
  (T^d_qwen and T^d_shikra are two dynamic texts, Table 1). We draw per (image, kind, model) with
  ``random.Random(f"{seed}:{image_id}:{kind}:{model}")`` — seeded, so a rerun draws the same template
  for the same call, and two models get independent draws (the same template with probability
  1/len(bank)). Reading declared: a retry of a rejected caption repeats the same call and keeps its
  template (the corpus row key holds ``template_id``). Without ``model`` (e.g. ``pedes templates
  render``) the key is ``f"{seed}:{image_id}:{kind}"``, the draw of corpora made before the model
  was part of the key.
* ``identity`` / ``clothing`` — seed 000 §3.3 dual prompts, with length (``{max_words}``) and
  temperature controls from the data file.
* ``styled`` — seed 000 §3.3 style prompts: any kind wrapped with one style prompt from a style bank
  (drawn with the same seeded RNG, after the template draw, so also per model when one is given). The instruction id gets the suffix
  ``+style:<style_id>``.

Every rendered instruction carries the sha256 of the exact text the model sees.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from caption_gen.instructions.slots import Template, TemplateError, parse_template
from pedes_core.errors import ConfigError, InputError

log = logging.getLogger(__name__)

#: Instruction kinds in their canonical order.
KINDS: tuple[str, ...] = ("static", "dynamic", "identity", "clothing")
_SAMPLING_KEYS = frozenset({"temperature", "top_p", "max_tokens"})
_KIND_KEYS = frozenset({"id", "text", "max_words", "sampling", "system"})


@dataclass(frozen=True)
class Instruction:
    """One rendered instruction: what the model saw, plus ids and hashes recorded in the caption row."""

    kind: str
    instruction_id: str
    sha256: str
    text: str
    system: str | None
    template_id: str | None
    style_id: str | None
    sampling: dict[str, Any] = field(default_factory=dict)

    def messages(self) -> list[dict[str, str]]:
        """Chat messages (system when set, then the user instruction); the image is added by the backend."""
        msgs: list[dict[str, str]] = []
        if self.system:
            msgs.append({"role": "system", "content": self.system})
        msgs.append({"role": "user", "content": self.text})
        return msgs


@dataclass(frozen=True)
class KindSpec:
    """One kind's entry of ``instructions.yaml``."""

    kind: str
    instruction_id: str
    text: str
    max_words: int | None
    sampling: dict[str, Any]
    system: str | None


@dataclass(frozen=True)
class StylePrompt:
    style_id: str
    prompt: str


@dataclass(frozen=True)
class TemplateProblem:
    """A template that failed validation: its position, its name (id or text) and the reason."""

    index: int
    name: str
    reason: str


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _default(name: str) -> Path:
    import templates

    return templates.path(name)


# ---------------------------------------------------------------------------------------------- templates


def _template_entries(path: Path) -> list[tuple[str | None, Any]]:
    """Raw (template_id, text) entries of a template bank file; raises ConfigError if unreadable."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read template bank ({exc})") from None
    suffix = path.suffix.lower()
    if suffix in {".txt", ".text", ""}:
        lines = [ln.strip() for ln in raw.splitlines()]
        return [(None, ln) for ln in lines if ln and not ln.startswith("#")]
    try:
        data = json.loads(raw) if suffix == ".json" else yaml.safe_load(raw)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: template bank is not valid {'JSON' if suffix == '.json' else 'YAML'} ({exc})") from None
    if isinstance(data, dict):
        data = data.get("templates")
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{path}: a template bank needs a non-empty list 'templates' (strings or {{text: ...}} objects)")
    entries: list[tuple[str | None, Any]] = []
    for item in data:
        if isinstance(item, dict):
            tid = item.get("template_id", item.get("id"))
            entries.append((str(tid) if tid is not None else None, item.get("text")))
        else:
            entries.append((None, item))
    return entries


def check_template_bank(path: str | Path) -> tuple[list[Template], list[TemplateProblem]]:
    """Validate every template of a bank; return the good ones and one problem per bad one.

    Accepts the project's YAML bank (``templates: [...]``), the mined JSON bank
    (``caption_gen.templates_mining.write_template_bank``), a plain JSON list, or plain text with one
    template per line (blank lines and ``#`` comments skipped). Duplicate ids are problems too.
    An unreadable file raises :class:`ConfigError`.
    """
    p = Path(path)
    good: list[Template] = []
    problems: list[TemplateProblem] = []
    seen: dict[str, int] = {}
    for i, (tid, text) in enumerate(_template_entries(p)):
        name = tid or (repr(text) if isinstance(text, str) else f"#{i}")
        if not isinstance(text, str):
            problems.append(TemplateProblem(i, name, f"template {name}: expected a string, got {type(text).__name__}"))
            continue
        try:
            tpl = parse_template(text, tid)
        except TemplateError as exc:
            problems.append(TemplateProblem(i, name, str(exc)))
            continue
        if tpl.template_id in seen:
            problems.append(TemplateProblem(i, tpl.template_id,
                                            f"template {tpl.template_id}: duplicate of entry {seen[tpl.template_id]}"))
            continue
        seen[tpl.template_id] = i
        good.append(tpl)
    return good, problems


@dataclass
class BankDuplicate:
    """An entry of a template bank that repeats an earlier entry word for word (whitespace ignored)."""

    index: int
    first: int
    template_id: str
    text: str


def check_bank_with_duplicates(path: str | Path) -> tuple[list[Any], list[Any], list[BankDuplicate]]:
    """:func:`caption_gen.instructions.bank.check_template_bank`, with exact duplicates split off.

    Choice (seed 002 §3.1's public bank of 46 templates holds one template twice): an entry whose text
    equals an earlier good entry's text is a *warning*, not a bad template — it is dropped and the rest
    of the bank is valid. Other problems (unknown slot, brackets, an id reused for a different text)
    stay problems. Returns ``(good templates, problems, duplicates)``."""
    good, problems = check_template_bank(path)
    entries = _template_entries(Path(path))
    first_by_text: dict[str, int] = {}
    for i, (_tid, text) in enumerate(entries):
        if isinstance(text, str):
            first_by_text.setdefault(" ".join(text.split()), i)
    duplicates: list[BankDuplicate] = []
    rest = []
    for p in problems:
        text = entries[p.index][1] if 0 <= p.index < len(entries) else None
        norm = " ".join(text.split()) if isinstance(text, str) else None
        first = first_by_text.get(norm) if norm is not None else None
        if first is not None and first != p.index and "duplicate" in p.reason:
            try:
                tid = parse_template(norm).template_id
            except TemplateError:
                rest.append(p)
                continue
            duplicates.append(BankDuplicate(p.index, first, tid, norm))
        else:
            rest.append(p)
    return good, rest, duplicates


def load_template_bank(path: str | Path) -> tuple[Template, ...]:
    """Load and validate a template bank; the first bad template raises :class:`ConfigError` naming file and
    template. Exact duplicates are dropped with one warning (:func:`check_bank_with_duplicates`), as
    ``pedes templates check`` does, so a bank that passes the check also loads."""
    good, problems, duplicates = check_bank_with_duplicates(path)
    if duplicates:
        log.warning("%s: %d exact duplicate template(s) dropped (entries %s)", path, len(duplicates),
                    ", ".join(str(d.index) for d in duplicates))
    if problems:
        more = f" (and {len(problems) - 1} more bad templates)" if len(problems) > 1 else ""
        raise ConfigError(f"{path}: {problems[0].reason}{more}")
    return tuple(good)


# ---------------------------------------------------------------------------------------------- styles


def load_style_prompts(path: str | Path) -> tuple[StylePrompt, ...]:
    """Style prompts from a style bank (the project's ``bank.json`` objects with ``style_id``/``prompt``,
    a styles directory, or a plain JSON list of prompt strings → ids ``style-NN``)."""
    from caption_gen.styles.bank import load_style_bank

    try:
        bank = load_style_bank(path)
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    return tuple(StylePrompt(s.style_id, s.prompt) for s in bank.styles)


# ---------------------------------------------------------------------------------------------- instructions


def _kind_spec(path: Path, kind: str, entry: Any, default_system: str | None) -> KindSpec:
    where = f"{path}: kinds.{kind}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping with id, text, sampling")
    unknown = set(entry) - _KIND_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)} (allowed: {sorted(_KIND_KEYS)})")
    iid, text = entry.get("id"), entry.get("text")
    if not isinstance(iid, str) or not iid.strip():
        raise ConfigError(f"{where}.id: must be a non-empty string")
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where}.text: must be a non-empty string")
    max_words = entry.get("max_words")
    if max_words is not None and (not isinstance(max_words, int) or max_words <= 0):
        raise ConfigError(f"{where}.max_words: must be a positive integer")
    if "{max_words}" in text and max_words is None:
        raise ConfigError(f"{where}: text uses {{max_words}} but max_words is not set")
    if kind == "dynamic" and "{template}" not in text:
        raise ConfigError(f"{where}.text: the dynamic instruction needs a {{template}} placeholder")
    sampling = entry.get("sampling") or {}
    if not isinstance(sampling, dict) or set(sampling) - _SAMPLING_KEYS:
        raise ConfigError(f"{where}.sampling: a mapping with keys among {sorted(_SAMPLING_KEYS)}")
    for key, val in sampling.items():
        if not isinstance(val, int | float) or isinstance(val, bool) or val < 0:
            raise ConfigError(f"{where}.sampling.{key}: must be a non-negative number")
    system = entry.get("system", default_system)
    return KindSpec(kind=kind, instruction_id=iid.strip(), text=text.strip(), max_words=max_words, sampling=dict(sampling), system=system)


class InstructionSet:
    """The instruction kinds of one run, loaded from data files and validated before any generation."""

    def __init__(self, specs: dict[str, KindSpec], templates: tuple[Template, ...],
                 styles: tuple[StylePrompt, ...] = (), *, wrapper: str = "{instruction}\n{style}",
                 id_suffix: str = "+style:{style_id}", version: str = "1",
                 sources: dict[str, str] | None = None) -> None:
        self.specs = specs
        self.templates = templates
        self.styles = styles
        self.wrapper = wrapper
        self.id_suffix = id_suffix
        self.version = version
        self.sources = sources or {}
        self.kinds: tuple[str, ...] = tuple(k for k in KINDS if k in specs)

    @classmethod
    def load(cls, instructions: Path | None = None, templates: Path | None = None,
             style_bank: Path | None = None) -> InstructionSet:
        """Load ``instructions.yaml``, the TDE template bank and (optionally) a style bank.

        Defaults are the shipped ``templates/instructions.yaml`` and ``templates/tde_templates.yaml``.
        Any problem (unreadable file, unknown kind, bad template) raises :class:`ConfigError` naming the file
        and the kind/template.
        """
        ipath = Path(instructions) if instructions is not None else _default("instructions.yaml")
        tpath = Path(templates) if templates is not None else _default("tde_templates.yaml")
        try:
            data = yaml.safe_load(ipath.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{ipath}: cannot read instructions ({exc})") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{ipath}: instructions are not valid YAML ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("kinds"), dict):
            raise ConfigError(f"{ipath}: expected a mapping with 'version' and 'kinds'")
        unknown = set(data["kinds"]) - set(KINDS)
        if unknown:
            raise ConfigError(f"{ipath}: unknown instruction kind(s) {sorted(unknown)} (known: {', '.join(KINDS)})")
        system = data.get("system")
        if system is not None and not isinstance(system, str):
            raise ConfigError(f"{ipath}: system must be a string or null")
        specs = {k: _kind_spec(ipath, k, v, system) for k, v in data["kinds"].items()}
        styled = data.get("styled") or {}
        wrapper = styled.get("wrapper", "{instruction}\n{style}")
        if "{instruction}" not in wrapper or "{style}" not in wrapper:
            raise ConfigError(f"{ipath}: styled.wrapper needs both {{instruction}} and {{style}}")
        id_suffix = styled.get("id_suffix", "+style:{style_id}")
        tpls = load_template_bank(tpath) if "dynamic" in specs else ()
        styles = load_style_prompts(style_bank) if style_bank is not None else ()
        sources = {"instructions": str(ipath), "templates": str(tpath)}
        if style_bank is not None:
            sources["style_bank"] = str(style_bank)
        return cls(specs, tpls, styles, wrapper=wrapper, id_suffix=id_suffix, version=str(data.get("version", "1")),
                   sources=sources)

    def spec(self, kind: str) -> KindSpec:
        if kind not in self.specs:
            raise ConfigError(f"unknown caption kind {kind!r} (known: {', '.join(self.kinds)})")
        return self.specs[kind]

    def check_kinds(self, kinds: list[str] | tuple[str, ...], *, styled: bool = False) -> None:
        """Raise :class:`ConfigError` before any generation if a kind is unknown or ``styled`` has no bank."""
        for k in kinds:
            self.spec(k)
        if styled and not self.styles:
            raise ConfigError("styled captions need a style bank (none was loaded)")

    def render(self, kind: str, *, image_id: str, seed: int, styled: bool = False,
               template_id: str | None = None, model: str | None = None) -> Instruction:
        """Render the instruction of ``kind`` for one call: one image sent to one ``model``
        (deterministic in ``seed``, ``image_id``, ``kind`` and ``model``).

        ``template_id`` forces a specific TDE template (dynamic only); otherwise it is drawn with
        ``random.Random(f"{seed}:{image_id}:{kind}:{model}")`` (without ``model``:
        ``f"{seed}:{image_id}:{kind}"``; module docstring). With ``styled`` a style prompt is drawn
        next from the same RNG.
        """
        spec = self.spec(kind)
        key = f"{seed}:{image_id}:{kind}" if model is None else f"{seed}:{image_id}:{kind}:{model}"
        rng = random.Random(key)
        text = spec.text
        tid: str | None = None
        if kind == "dynamic":
            if not self.templates:
                raise ConfigError(f"{self.sources.get('templates', 'template bank')}: no TDE templates loaded")
            if template_id is not None:
                matches = [t for t in self.templates if t.template_id == template_id]
                if not matches:
                    raise ConfigError(f"unknown TDE template id {template_id!r}")
                tpl = matches[0]
            else:
                tpl = rng.choice(self.templates)
            tid = tpl.template_id
            text = text.replace("{template}", tpl.text)
        if spec.max_words is not None:
            text = text.replace("{max_words}", str(spec.max_words))
        iid = spec.instruction_id
        sid: str | None = None
        if styled:
            if not self.styles:
                raise ConfigError("styled captions need a style bank (none was loaded)")
            style = rng.choice(self.styles)
            sid = style.style_id
            text = self.wrapper.replace("{instruction}", text).replace("{style}", style.prompt)
            iid += self.id_suffix.replace("{style_id}", sid)
        digest_src = (spec.system or "") + "\x00" + text if spec.system else text
        return Instruction(kind=kind, instruction_id=iid, sha256=_sha256(digest_src), text=text, system=spec.system,
                           template_id=tid, style_id=sid, sampling=dict(spec.sampling))

    def template_summary(self) -> dict[str, int]:
        """How many templates use each slot type."""
        counts: dict[str, int] = {}
        for t in self.templates:
            for s in set(t.slots):
                counts[s] = counts.get(s, 0) + 1
        return counts
