"""Short learning tests on synthetic pedestrians (minimal local loop, see ``plugin_training.py``).

Each trains a tiny CLIP with the method switched on and checks text→image Rank-1 on a held-out split
(new renders of the training identities) is well above chance; measured and chance values are printed.
"""

from __future__ import annotations

import pytest
import torch
from conftest import synthetic_people
from plugin_training import rank1, train_steps

import training.methods  # noqa: F401
from training.registry import METHODS

NUM_IDS = 12
CHANCE = 1 / NUM_IDS


def _run(name, config, tokenizer, steps, **params) -> float:
    torch.manual_seed(0)
    train = synthetic_people(tokenizer, NUM_IDS, per_id=4, seed=1)
    gallery = synthetic_people(tokenizer, NUM_IDS, per_id=1, seed=2)
    queries = synthetic_people(tokenizer, NUM_IDS, per_id=1, seed=3)
    method = METHODS.build(
        name, model=config, num_classes=NUM_IDS, num_captions=train.images.shape[0], tokenizer=tokenizer, **params
    )
    before = rank1(method, gallery, queries)
    train_steps(method, train, steps=steps, batch_size=16, lr=1e-3, seed=0)
    after = rank1(method, gallery, queries)
    print(f"{name}: Rank-1 before {before:.3f}, after {after:.3f}, chance {CHANCE:.3f}")
    return after


@pytest.mark.slow
def test_sew_mcm_learns(plugin_model_config, plugin_tokenizer) -> None:
    assert _run("sew_mcm", plugin_model_config, plugin_tokenizer, 40, length_min=5, length_max=12) >= 4 * CHANCE


@pytest.mark.slow
def test_cfam_learns(plugin_model_config, plugin_tokenizer) -> None:
    params = {"decoder_dim": 32, "decoder_heads": 4, "num_queries": 4}
    assert _run("cfam", plugin_model_config, plugin_tokenizer, 40, **params) >= 4 * CHANCE


@pytest.mark.slow
def test_weak_learns_and_recovers_identities(plugin_model_config, plugin_tokenizer) -> None:
    """Labels hidden (the method cannot read them): LRC + GSRC-FR relations are scored against the truth."""
    torch.manual_seed(0)
    train = synthetic_people(plugin_tokenizer, NUM_IDS, per_id=4, seed=1)
    gallery = synthetic_people(plugin_tokenizer, NUM_IDS, per_id=1, seed=2)
    queries = synthetic_people(plugin_tokenizer, NUM_IDS, per_id=1, seed=3)
    truth = train.person_ids
    hidden = type(train)(train.images, train.tokens, torch.full_like(truth, -1))  # labels hidden

    def weak(**params):
        return METHODS.build(
            "weak_dual_granularity", model=plugin_model_config, num_classes=1,
            num_captions=train.images.shape[0], tokenizer=plugin_tokenizer, **params,
        )

    # The paper starts from CLIP-pretrained encoders (th = 0.7 assumes their feature scale); a random tiny
    # model is first trained with the baseline B (ITC only, pairing only), then LRC + GSRC-FR are added.
    baseline = weak(lrc_weight=0.0, gsrc_weight=0.0, iasc_weight=0.0)
    train_steps(baseline, hidden, steps=60, batch_size=16, lr=1e-3, seed=0)
    method = weak(iasc_weight=0.0)
    method.load_state_dict(baseline.state_dict(), strict=False)
    train_steps(method, hidden, steps=60, batch_size=16, lr=1e-3, seed=1)
    after = rank1(method, gallery, queries)
    # one more pass in eval mode over the training set collects the mined relations
    method.eval()
    lrc_hits = lrc_total = gsrc_hits = gsrc_total = 0
    with torch.no_grad():
        order = torch.randperm(train.images.shape[0], generator=torch.Generator().manual_seed(5))
        for start in range(0, train.images.shape[0], 16):
            index = order[start : start + 16]
            method(hidden.batch(index))
            rel = method.last_relations
            ids = truth[index]
            pairs = rel["relation"].bool() & ~torch.eye(16, dtype=torch.bool)
            lrc_total += int(pairs.sum())
            lrc_hits += int((pairs & (ids[:, None] == ids[None, :])).sum())
            bank_ids = truth[rel["bank_rows"]]
            mined = rel["bank_related"]
            gsrc_total += int(mined.sum())
            gsrc_hits += int((mined & (ids[:, None] == bank_ids[None, :])).sum())
    lrc_precision = lrc_hits / max(lrc_total, 1)
    gsrc_precision = gsrc_hits / max(gsrc_total, 1)
    base_rate = 3 / 47  # a random other training pair shares the identity with this probability
    print(
        f"weak_dual_granularity: Rank-1 {after:.3f} (chance {CHANCE:.3f}); LRC relations {lrc_total} "
        f"precision {lrc_precision:.3f}; GSRC-FR relations {gsrc_total} precision {gsrc_precision:.3f} "
        f"(random pairing precision {base_rate:.3f})"
    )
    assert after >= 4 * CHANCE
    assert lrc_total > 0 and gsrc_total > 0
    # Measured 2026-11-23 (60+60 steps): LRC precision 0.078, GSRC-FR 0.183 vs random 0.064. With a random
    # tiny model, th = 0.7 relates most in-batch pairs (cosines are high everywhere), so LRC is only at the
    # random rate here; the memory-bank relations (GSRC-FR) are ~3x better than random.
    assert lrc_precision >= base_rate and gsrc_precision > 2 * base_rate
