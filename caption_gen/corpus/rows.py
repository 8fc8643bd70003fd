"""Row builders: dicts matching ``CAPTION_SCHEMA`` / ``REJECT_SCHEMA`` with defaults filled in.

Defaults: every nullable column → ``None``; ``created_at`` → now (UTC); caption rows also get
``attempt=1`` and ``validation={"passed": True, "reasons": [], "covered": [], "coverage": None}``
(a partial ``validation`` dict is completed with the same defaults). A missing required column or an
unknown column raises ``ValueError`` naming it. Types are checked by the writer (pyarrow).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import pyarrow as pa

from caption_gen.corpus.schema import CAPTION_SCHEMA, REJECT_SCHEMA


def _validation_default() -> dict[str, Any]:
    return {"passed": True, "reasons": [], "covered": [], "coverage": None}


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


_FIELDS: dict[int, tuple[frozenset[str], tuple[tuple[str, bool], ...]]] = {}


def _fields_of(schema: pa.Schema) -> tuple[frozenset[str], tuple[tuple[str, bool], ...]]:
    key = id(schema)
    if key not in _FIELDS:
        _FIELDS[key] = (frozenset(schema.names), tuple((f.name, f.nullable) for f in schema))
    return _FIELDS[key]


def _fill(schema: pa.Schema, what: str, fields: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    names, spec = _fields_of(schema)
    if not names.issuperset(fields):
        unknown = sorted(set(fields) - names)
        raise ValueError(f"{what}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(schema.names)}")
    row: dict[str, Any] = {}
    for name, nullable in spec:
        value = fields.get(name)
        if value is not None:
            row[name] = value
        elif name in defaults:
            row[name] = defaults[name]
        elif nullable:
            row[name] = None
        else:
            raise ValueError(f"{what}: required field {name!r} is missing")
    return row


def caption_row(**fields: Any) -> dict[str, Any]:
    """One caption row (long format: one generated caption) with defaults filled in."""
    validation = fields.get("validation")
    if isinstance(validation, dict):
        unknown = set(validation) - set(_validation_default())
        if unknown:
            raise ValueError(f"caption row: unknown validation field(s) {', '.join(sorted(unknown))}")
        fields = {**fields, "validation": {**_validation_default(), **validation}}
    return _fill(
        CAPTION_SCHEMA,
        "caption row",
        fields,
        {"attempt": 1, "created_at": _now(), "validation": _validation_default()},
    )


def reject_row(**fields: Any) -> dict[str, Any]:
    """One reject row (an image or caption that failed, with its reason)."""
    return _fill(REJECT_SCHEMA, "reject row", fields, {"created_at": _now()})
