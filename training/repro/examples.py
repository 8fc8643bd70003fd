"""Accepted captions of a corpus next to the ground truth of their synthetic images (the demo's summary).

The source images of the miniature world are synthetic, so every caption can be read beside the
attributes the renderer drew (``attributes.jsonl``): a reader sees at a glance whether the trained
captioner named the right colours and garments, and where the noisy captioner did not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def attribute_line(record: dict[str, Any]) -> str:
    """``man, short black hair | red t-shirt, blue trousers, black shoes, no bag`` from one attributes record."""
    i, o = record["identity"], record["outfit"]
    hair = "shaved head" if i["hair_style"] == "bald" else f"{i['hair_style']} {i['hair_color']} hair"
    bag = "no bag" if o["bag"] == "none" else f"{o['bag_color']} {o['bag']}"
    return (f"{i['gender']}, {hair} | {o['top_color']} {o['top_type']}, {o['bottom_color']} {o['bottom_type']}, "
            f"{o['shoes_color']} shoes, {bag}")


def caption_examples(corpus: str | Path, attributes: str | Path, *, kinds: list[str], per_kind: int = 2,
                     seed: int = 0) -> list[dict[str, str]]:
    """Up to ``per_kind`` accepted captions of each kind with the image's ground-truth attributes, taken in
    turn from each model of the corpus, the first turn passing to the next model with each kind (so two
    captioners both show up, even with ``per_kind`` 1 over two kinds)."""
    from itertools import chain, zip_longest

    from caption_gen.corpus.sample import sample_rows

    truth = {}
    for line in Path(attributes).read_text().splitlines():
        rec = json.loads(line)
        truth[rec["file_path"]] = attribute_line(rec)
    out = []
    for k, kind in enumerate(kinds):
        rows = [r for r in sample_rows(corpus, kind=kind, n=8 * per_kind, seed=seed) if r["validation"]["passed"]]
        by_model: dict[str, list[dict]] = {}
        for row in rows:
            by_model.setdefault(row["model"], []).append(row)
        models = sorted(by_model)
        models = models[k % len(models):] + models[:k % len(models)] if models else models
        turns = [r for r in chain.from_iterable(zip_longest(*(by_model[m] for m in models))) if r is not None]
        for row in turns[:per_kind]:
            out.append({"kind": kind, "model": row["model"], "caption": row["caption"],
                        "truth": truth.get(row["image_path"], "?"), "image": row["image_path"]})
    return out
