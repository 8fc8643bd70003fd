"""Training targets, noise, scoring, adherence and caching of the captioner (no engine, fast)."""

from __future__ import annotations

import numpy as np
import pytest

from caption_gen.captioner.adherence import follows_template
from caption_gen.captioner.noise import corrupt
from caption_gen.captioner.scoring import applicable_groups, score_caption
from caption_gen.captioner.targets import (
    CLOTHING_PHRASINGS,
    IDENTITY_PHRASINGS,
    STATIC_PHRASINGS,
    fill_template,
    target_text,
)
from caption_gen.instructions.bank import InstructionSet
from caption_gen.synth.captions import PATTERNS
from caption_gen.synth.dataset import person
from caption_gen.validation.rules import leakage_terms
from caption_gen.validation.validate import validate_caption


@pytest.fixture(scope="module")
def people():
    out = []
    for pid in range(40):
        ident, outfits = person(pid, 77, 2)
        out += [(ident, o) for o in outfits]
    return out


def test_every_phrasing_passes_validation_and_reads_back(people):
    rng = np.random.default_rng(0)
    for ident, outfit in people:
        for kind, n in (("static", len(STATIC_PHRASINGS)), ("identity", len(IDENTITY_PHRASINGS)),
                        ("clothing", len(CLOTHING_PHRASINGS))):
            for _ in range(2 * n):
                text = target_text(kind, ident, outfit, rng=rng)
                v = validate_caption(text, kind)
                assert v.passed, (kind, text, v.reasons)
                assert all(score_caption(text, ident, outfit, applicable_groups(kind)).values()), text
                if kind in ("identity", "clothing"):
                    assert leakage_terms(text, kind) == [], text


def test_dynamic_targets_fill_every_template_and_follow_it(people):
    templates = InstructionSet.load().templates
    for ident, outfit in people[:10]:
        for tpl in templates:
            text = fill_template(tpl, ident, outfit)
            assert follows_template(text, tpl.text), (tpl.text, text)
            v = validate_caption(text, "dynamic")
            assert "unfilled_slot" not in v.reasons and "incomplete_sentence" not in v.reasons, (text, v.reasons)
            assert all(score_caption(text, ident, outfit, applicable_groups("dynamic", tpl.slots)).values()), text


def test_adherence_rejects_other_structures():
    tpl = "A [person/woman/man] with [hair description], wearing [clothing description] and [footwear description]."
    assert follows_template("An man with long black hair, wearing a red coat and blue shorts and black shoes.", tpl)
    assert not follows_template("The man has long black hair and wears a red coat and black shoes.", tpl)
    assert not follows_template("A man with [hair description], wearing a coat and black shoes.", tpl)


def test_targets_are_not_the_benchmark_phrasings(people):
    ident, outfit = people[0]
    ours = {f(ident, outfit) for f in STATIC_PHRASINGS}
    assert not ours & {p(ident, outfit) for p in PATTERNS}


def test_noise_replaces_values_at_the_given_rate(people):
    rng = np.random.default_rng(1)
    changed = total = 0
    wrong = 0
    for _ in range(30):
        for ident, outfit in people:
            i2, o2, n = corrupt(ident, outfit, 0.2, rng)
            changed += n
            total += 13
            text = target_text("static", i2, o2, rng=rng)
            wrong += not all(score_caption(text, ident, outfit, ("top_color",)).values())
    assert 0.17 < changed / total < 0.23
    assert 0.15 < wrong / (30 * len(people)) < 0.25  # a top colour is wrong about 20 % of the time
    i0, o0, n0 = corrupt(*people[0], 0.0, rng)
    assert (i0, o0, n0) == (*people[0], 0)


def test_cache_key_follows_config_and_data(tmp_path):
    from caption_gen.captioner import CaptionerConfig

    a = CaptionerConfig(steps=10)
    assert a.cache_key("d1") == CaptionerConfig(steps=10, out=tmp_path, threads=1).cache_key("d1")
    assert a.cache_key("d1") != CaptionerConfig(steps=11).cache_key("d1")
    assert a.cache_key("d1") != CaptionerConfig(steps=10, noise=0.1).cache_key("d1")
    assert a.cache_key("d1") != a.cache_key("d2")
