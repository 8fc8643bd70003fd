"""Attribute accuracy of a whole caption corpus against the ``attributes.jsonl`` of the synthetic folder
its images came from (:mod:`caption_gen.captioner.scoring`, per group and averaged over groups).

This is how much a corpus's captions can be trusted: the quality benchmark reports it for a captioner on
held-out people, and the miniature reproduction (DESIGN.md §8) reports it for its clean and noisy corpora,
so the noise the NAM arms are meant to cope with (seed 002 §3.2) is a measured figure, not an assumption.
Accepted rows only (what a training run reads); ``dynamic`` captions are scored on the groups their TDE
template has a slot for."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from caption_gen.captioner.records import load_records
from caption_gen.captioner.scoring import applicable_groups, score_caption
from pedes_core.errors import ConfigError

__all__ = ["corpus_attribute_accuracy"]


def corpus_attribute_accuracy(corpus: str | Path, synthetic: str | Path,
                              kinds: tuple[str, ...] | list[str] | None = None) -> dict[str, dict[str, Any]]:
    """``{kind: {"captions": n, "groups": {group: accuracy}, "mean": mean over groups}}`` of the accepted
    captions of ``corpus`` (a captioning output folder) whose images are ``synthetic/imgs/...``.

    Raises :class:`ConfigError` naming the image when a caption's image has no attribute record (the
    corpus was not captioned from that folder)."""
    import pandas as pd

    from caption_gen.instructions.bank import InstructionSet

    corpus, synthetic = Path(corpus), Path(synthetic)
    shards = sorted((corpus / "shards").glob("*.parquet"))
    if not shards:
        raise ConfigError(f"{corpus}: no accepted shards (shards/*.parquet)")
    rows = pd.concat([pd.read_parquet(p, columns=["kind", "image_path", "caption", "template_id"]) for p in shards],
                     ignore_index=True)
    records = {str(r.path.relative_to(synthetic / "imgs")): r for r in load_records(synthetic, None)}
    slots = {t.template_id: t.slots for t in InstructionSet.load().templates}
    out: dict[str, dict[str, Any]] = {}
    for kind in kinds if kinds is not None else sorted(rows["kind"].unique()):
        hits: dict[str, list[bool]] = defaultdict(list)
        sub = rows[rows["kind"] == kind]
        for image, caption, template in zip(sub["image_path"], sub["caption"], sub["template_id"], strict=True):
            rec = records.get(image)
            if rec is None:
                raise ConfigError(f"{corpus}: image {image!r} has no record in {synthetic / 'attributes.jsonl'}")
            groups = applicable_groups(kind, slots.get(template) if kind == "dynamic" else None)
            for group, ok in score_caption(caption, rec.identity, rec.outfit, groups).items():
                hits[group].append(ok)
        per = {g: round(sum(v) / len(v), 4) for g, v in hits.items()}
        out[kind] = {"captions": int(len(sub)), "groups": per,
                     "mean": round(sum(per.values()) / len(per), 4) if per else None}
    return out
