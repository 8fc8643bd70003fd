"""Style sources: human-written (or generated) descriptions to cluster by writing style (seed 000 §3.3).

:func:`load_style_texts` accepts

* a text file (``.txt``/``.lst``) — one description per line, blank lines skipped;
* a benchmark annotation file (``.json``/``.jsonl``) — CUHK-PEDES ``reid_raw.json``, ICFG-PEDES
  ``ICFG-PEDES.json``, RSTPReid ``data_captions.json``, UFine6926/UFine3C JSON: a list of records (or a
  mapping holding one under ``annotations``/``data``/``images``) whose ``captions`` (list) or
  ``caption``/``description`` (string) hold the texts. Choice: styles need only the texts, so the file
  is read directly and images are not required (the benchmark loaders in
  ``training.data.benchmarks`` need the image folder); ``split`` filters on a record's ``split`` field;
* a Parquet file with a ``caption`` or ``text`` column;
* a corpus directory (``corpus.json`` / ``shards/_done``) — its caption column via
  :class:`caption_gen.corpus.reader.Corpus` (only captions that passed validation).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pedes_core.errors import InputError

_CAPTION_KEYS = ("captions", "caption", "descriptions", "description", "text", "texts")
_LIST_KEYS = ("annotations", "data", "images", "items", "records")


@dataclass
class StyleSource:
    """Texts to cluster and where they came from."""

    texts: list[str]
    origin: str
    kind: str  # text | annotations | parquet | corpus
    skipped: int = 0  # empty/non-string entries dropped (reported, never silent)


def _texts_of_record(rec: Any, where: str) -> list[str]:
    if isinstance(rec, str):
        return [rec]
    if not isinstance(rec, dict):
        raise InputError(f"{where}: expected an object with captions, got {type(rec).__name__}")
    for key in _CAPTION_KEYS:
        if key in rec:
            val = rec[key]
            if isinstance(val, str):
                return [val]
            if isinstance(val, list):
                return [v for v in val if isinstance(v, str)] + [""] * sum(not isinstance(v, str) for v in val)
            raise InputError(f"{where}: field '{key}' must be a string or a list of strings")
    raise InputError(f"{where}: no caption field (expected one of {', '.join(_CAPTION_KEYS)})")


def _records(data: Any, path: Path) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in _LIST_KEYS:
            if isinstance(data.get(key), list):
                return data[key]
        if any(k in data for k in _CAPTION_KEYS):
            return [data]
    raise InputError(f"{path}: not a caption annotation file (expected a list of records with 'captions')")


def _read_annotations(path: Path, split: str | None) -> list[str]:
    try:
        if path.suffix == ".jsonl":
            data = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    out: list[str] = []
    for i, rec in enumerate(_records(data, path)):
        if split is not None and isinstance(rec, dict) and rec.get("split") not in (None, split):
            continue
        out.extend(_texts_of_record(rec, f"{path} record {i}"))
    return out


def _read_parquet(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    col = next((c for c in ("caption", "text") if c in names), None)
    if col is None:
        raise InputError(f"{path}: Parquet file has no 'caption' or 'text' column (columns: {', '.join(names)})")
    return [t if isinstance(t, str) else "" for t in pq.read_table(path, columns=[col]).column(col).to_pylist()]


def _read_corpus(path: Path) -> list[str]:
    import pyarrow.compute as pc

    from caption_gen.corpus.reader import Corpus

    corpus = Corpus.open(path)
    table = corpus.captions(columns=["caption", "validation"])
    passed = pc.struct_field(table.column("validation"), "passed")
    table = table.filter(pc.fill_null(passed, True))
    return [t if isinstance(t, str) else "" for t in table.column("caption").to_pylist()]


def _clean(texts: Iterable[str]) -> tuple[list[str], int]:
    kept, skipped = [], 0
    for t in texts:
        t = " ".join(t.split()) if isinstance(t, str) else ""
        if t:
            kept.append(t)
        else:
            skipped += 1
    return kept, skipped


def load_style_texts(
    source: str | Path, *, split: str | None = None, max_texts: int | None = None, seed: int = 0
) -> StyleSource:
    """Read the texts of ``source`` (see module docstring); ``max_texts`` keeps a seeded random sample
    (in source order). Raises :class:`InputError` naming the file when it is missing, malformed or empty."""
    path = Path(source).expanduser()
    if not path.exists():
        raise InputError(f"{source}: style source not found")
    if path.is_dir():
        if (path / "corpus.json").is_file() or (path / "shards" / "_done").is_dir():
            raw, kind = _read_corpus(path), "corpus"
        else:
            raise InputError(f"{source}: a directory source must be a corpus (corpus.json or shards/_done/)")
    elif path.suffix in (".json", ".jsonl"):
        raw, kind = _read_annotations(path, split), "annotations"
    elif path.suffix == ".parquet":
        raw, kind = _read_parquet(path), "parquet"
    else:
        try:
            raw = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise InputError(f"{source}: text source is not UTF-8") from None
        kind = "text"
    texts, skipped = _clean(raw)
    if not texts:
        raise InputError(f"{source}: no descriptions found ({skipped} empty entries)")
    if max_texts is not None and len(texts) > max_texts:
        idx = np.sort(np.random.default_rng(seed).choice(len(texts), max_texts, replace=False))
        texts = [texts[i] for i in idx]
    return StyleSource(texts=texts, origin=str(path.resolve()), kind=kind, skipped=skipped)
