"""Attribute accuracy of a whole corpus: captions written from the true attributes score 1.0 on every
group; the same corpus with the top colour replaced by a wrong one loses exactly that group; a caption
whose image has no record is an error naming it."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from caption_gen.captioner.corpus_accuracy import corpus_attribute_accuracy
from caption_gen.captioner.records import load_records
from caption_gen.captioner.targets import STATIC_PHRASINGS
from caption_gen.synth.attributes import PALETTE
from pedes_core.errors import ConfigError


def _corpus(root, rows):
    (root / "shards").mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(root / "shards" / "shard-00000.parquet")
    return root


def _rows(synth, wrong_top: bool = False):
    rows = []
    for rec in load_records(synth, None):
        outfit = rec.outfit
        if wrong_top:
            outfit = dataclasses.replace(outfit, top_color=next(c for c in PALETTE if c != outfit.top_color))
        rows.append({"kind": "static", "image_path": str(rec.path.relative_to(synth / "imgs")),
                     "caption": STATIC_PHRASINGS[0](rec.identity, outfit), "template_id": None})
    return rows


def test_true_captions_score_one_and_a_wrong_colour_costs_its_group(tmp_path, heldout_synth):
    right = corpus_attribute_accuracy(_corpus(tmp_path / "right", _rows(heldout_synth)), heldout_synth)
    assert right["static"]["captions"] == 12 and right["static"]["mean"] == 1.0
    wrong = corpus_attribute_accuracy(_corpus(tmp_path / "wrong", _rows(heldout_synth, wrong_top=True)), heldout_synth)
    groups = wrong["static"]["groups"]
    assert groups["top_color"] == 0.0
    assert all(v == 1.0 for g, v in groups.items() if g != "top_color")
    assert wrong["static"]["mean"] == pytest.approx(7 / 8, abs=1e-4)


def test_an_image_without_a_record_is_named(tmp_path, heldout_synth):
    rows = _rows(heldout_synth)[:1]
    rows[0]["image_path"] = "nobody/0.jpg"
    with pytest.raises(ConfigError, match="nobody/0.jpg"):
        corpus_attribute_accuracy(_corpus(tmp_path / "c", rows), heldout_synth)
