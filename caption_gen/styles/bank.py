"""Versioned style bank: the style prompts the captioning engine's ``styled`` kind samples from.

File format (``bank.json``) — a JSON **list** of objects, one per style::

    [{"style_id": "style-00", "prompt": "Unlike most descriptions, ...", "size": 812, "share": 0.41,
      "prompt_source": "statistics", "features": "stylometric + neutralized-text n-gram features (no CLIP
      weights configured; ...)", "distinguishing": [{"feature": "sentences", "value": 1.0, "corpus": 2.9,
      "z": -1.4, ...}, ...], "pattern": "Dressed in a [color] [garment] ...",
      "prompt_sha256": "...", "bank_version": "sb1-3f2a9c0d1e2b"}, ...]

``features`` says which features the clustering used (so a bank built without CLIP weights says so),
``distinguishing`` the features that set the style apart from the corpus (value vs corpus mean, in
corpus standard deviations), ``pattern`` the neutralized exemplar pattern (seed 000 §3.3).

``bank_version`` (same in every entry) is ``sb<format>-`` + the first 12 hex digits of the sha256 of
the canonical ``[(style_id, prompt), ...]`` list, so any prompt change gives a new version that the
corpus manifest records. ``bank.meta.json`` beside it holds the rest (format version, sha256 of
``bank.json``, algorithm, source, text count, config hash, creation time).

:func:`load_style_bank` also accepts a plain JSON list of prompt strings (ids ``style-00``, ``style-01``
... are assigned in order) and a mapping with a ``styles`` list, so hand-written banks stay loadable.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pedes_core.errors import InputError

BANK_FORMAT_VERSION = 1
BANK_NAME = "bank.json"
META_NAME = "bank.meta.json"


@dataclass(frozen=True)
class StyleEntry:
    style_id: str
    prompt: str
    size: int = 0
    share: float = 0.0
    prompt_source: str = "manual"
    #: What the clustering features were (e.g. no CLIP weights configured).
    features: str = ""
    #: Distinguishing features of the style vs the corpus (dicts of caption_gen.styles.prompts.Deviation).
    distinguishing: tuple[dict[str, Any], ...] = ()
    #: Neutralized exemplar pattern.
    pattern: str = ""

    @property
    def prompt_sha256(self) -> str:
        return hashlib.sha256(self.prompt.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StyleBank:
    styles: tuple[StyleEntry, ...]
    version: str
    path: str | None = None

    def __len__(self) -> int:
        return len(self.styles)

    def by_id(self) -> dict[str, StyleEntry]:
        return {s.style_id: s for s in self.styles}

    @property
    def sha256(self) -> str:
        """Hash of the canonical bank content (what a corpus manifest records)."""
        return _content_hash(self.styles)


def style_id_for(index: int) -> str:
    return f"style-{index:02d}"


def _content_hash(styles: Sequence[StyleEntry]) -> str:
    canon = json.dumps([[s.style_id, s.prompt] for s in styles], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def bank_version(styles: Sequence[StyleEntry]) -> str:
    return f"sb{BANK_FORMAT_VERSION}-{_content_hash(styles)[:12]}"


def write_style_bank(styles: Sequence[StyleEntry], out_dir: str | Path, *, meta: dict[str, Any] | None = None) -> Path:
    """Write ``bank.json`` (+ ``bank.meta.json``) atomically; returns the bank path."""
    if not styles:
        raise ValueError("write_style_bank: empty bank")
    ids = [s.style_id for s in styles]
    if len(set(ids)) != len(ids):
        raise ValueError("write_style_bank: duplicate style_id")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    version = bank_version(styles)
    entries = [dict(asdict(s), prompt_sha256=s.prompt_sha256, bank_version=version) for s in styles]
    text = json.dumps(entries, indent=2, ensure_ascii=False) + "\n"
    target = out / BANK_NAME
    _atomic_write(target, text)
    meta_doc = {
        "format": "pedes-style-bank",
        "format_version": BANK_FORMAT_VERSION,
        "bank_version": version,
        "bank_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "content_sha256": _content_hash(styles),
        "styles": len(styles),
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(),
        **(meta or {}),
    }
    _atomic_write(out / META_NAME, json.dumps(meta_doc, indent=2, default=str) + "\n")
    return target


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def load_style_bank(path: str | Path) -> StyleBank:
    """Load a style bank: a styles directory (its ``bank.json``), a list of entry objects, a list of
    prompt strings, or a mapping with a ``styles`` list. :class:`InputError` names the file and entry."""
    p = Path(path)
    if p.is_dir():
        p = p / BANK_NAME
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{p}: style bank not found") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: style bank is not valid JSON ({exc})") from None
    if isinstance(data, dict):
        data = data.get("styles")
    if not isinstance(data, list) or not data:
        raise InputError(f"{p}: a style bank must be a non-empty JSON list of prompts or style objects")
    styles: list[StyleEntry] = []
    for i, item in enumerate(data):
        if isinstance(item, str):
            if not item.strip():
                raise InputError(f"{p}: entry {i}: empty prompt")
            styles.append(StyleEntry(style_id=style_id_for(i), prompt=item.strip()))
        elif isinstance(item, dict):
            prompt = item.get("prompt")
            if not isinstance(prompt, str) or not prompt.strip():
                raise InputError(f"{p}: entry {i}: field 'prompt' must be a non-empty string")
            sid = item.get("style_id", style_id_for(i))
            try:
                styles.append(StyleEntry(style_id=str(sid), prompt=prompt.strip(), size=int(item.get("size", 0)),
                                         share=float(item.get("share", 0.0)),
                                         prompt_source=str(item.get("prompt_source", "manual")),
                                         features=str(item.get("features", "")),
                                         distinguishing=tuple(d for d in item.get("distinguishing") or ()
                                                              if isinstance(d, dict)),
                                         pattern=str(item.get("pattern", ""))))
            except (TypeError, ValueError):
                raise InputError(f"{p}: entry {i}: field 'size'/'share' must be numeric") from None
        else:
            raise InputError(f"{p}: entry {i}: expected a string or an object, got {type(item).__name__}")
    ids = [s.style_id for s in styles]
    dup = {x for x in ids if ids.count(x) > 1}
    if dup:
        raise InputError(f"{p}: duplicate style_id {sorted(dup)[0]!r}")
    return StyleBank(styles=tuple(styles), version=bank_version(styles), path=str(p))
