"""TDE adherence: does a dynamic caption follow its template's slot structure?

The template's literal text (between slots) must appear in the caption in order, each slot filled by
some non-empty text that contains no ``[...]``; matching ignores case, whitespace runs and the
``a``/``an`` form of an article before a slot (the fill decides it). Example: the template
``"A [person/woman/man] with [hair description]."`` is followed by ``"A man with long black hair."``.
"""

from __future__ import annotations

import re
from functools import lru_cache

_SLOT_RE = re.compile(r"\[[^\[\]]*\]")


def _literal(text: str) -> str:
    words = text.split()
    out = []
    for w in words:
        if w.lower() in ("a", "an"):
            out.append(r"an?")
        else:
            out.append(re.escape(w))
    body = r"\s+".join(out)
    if text[:1].isspace() and body:
        body = r"\s+" + body
    if text[-1:].isspace() and body:
        body = body + r"\s+"
    return body


@lru_cache(maxsize=512)
def template_pattern(template_text: str) -> re.Pattern[str]:
    """The regular expression a caption of ``template_text`` must fully match."""
    parts = _SLOT_RE.split(" ".join(template_text.split()))
    regex = r"(?:[^\[\]]+?)".join(_literal(p) if p.strip() else (r"\s+" if p else "") for p in parts)
    return re.compile(r"^\s*" + regex + r"\s*$", re.IGNORECASE | re.DOTALL)


def follows_template(caption: str, template_text: str) -> bool:
    """True when ``caption`` keeps the structure of ``template_text`` (module docstring)."""
    return template_pattern(template_text).match(" ".join(caption.split())) is not None
