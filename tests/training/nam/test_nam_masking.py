"""Seed 002 Eq. 1-4 and the BERT-style replacement used by NAM and EM."""

from __future__ import annotations

import pytest
import torch

from training.losses import IGNORE_INDEX
from training.nam import (
    equal_masking_probabilities,
    masking_probabilities,
    masking_seeds,
    sample_token_masking,
    token_noise,
)

MASK_ID = 49405


def test_probabilities_hand_value() -> None:
    noise = torch.tensor([[0.2, 0.4, 0.6, 9.0]])
    valid = torch.tensor([[True, True, True, False]])
    # E_r = 0.4 over the valid tokens; r' = r - 0.4 + 0.15 = [-0.05, 0.15, 0.35] -> clip -> [0, .15, .35]
    got = masking_probabilities(noise, valid, p=0.15)
    assert torch.allclose(got, torch.tensor([[0.0, 0.15, 0.35, 0.0]]), atol=1e-6)


def test_probabilities_mean_is_p_without_clipping() -> None:
    torch.manual_seed(0)
    noise = 0.5 + 0.1 * torch.rand(6, 20)  # spread 0.1 < p: nothing is clipped
    lengths = torch.tensor([3, 7, 12, 20, 1, 15])
    valid = torch.arange(20)[None, :] < lengths[:, None]
    for p in (0.15, 0.3):
        probs = masking_probabilities(noise, valid, p=p)
        per_caption = (probs * valid).sum(1) / valid.sum(1)
        assert torch.allclose(per_caption, torch.full((6,), p), atol=1e-6)
        assert torch.all(probs[~valid] == 0)


def test_clipping_moves_the_mean_documented_case() -> None:
    # r = [0, 0, 2]: E_r = 2/3, r' = [-0.517, -0.517, 1.483] -> clipped [0, 0, 1]: mean 1/3, not p
    probs = masking_probabilities(torch.tensor([[0.0, 0.0, 2.0]]), torch.ones(1, 3, dtype=torch.bool), p=0.15)
    assert torch.allclose(probs, torch.tensor([[0.0, 0.0, 1.0]]))


def test_caption_without_valid_tokens_gets_zero() -> None:
    probs = masking_probabilities(torch.rand(1, 5), torch.zeros(1, 5, dtype=torch.bool))
    assert torch.all(probs == 0)


def test_token_noise_hand_value() -> None:
    text = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])
    image = torch.tensor([[[2.0, 0.0], [0.6, 0.8]]])
    valid = torch.tensor([[True, True, False]])
    # token 1 matches patch 1 exactly -> 0; token 2: best cos 0.8 -> 0.2; token 3 invalid -> 0
    assert torch.allclose(token_noise(text, image, valid), torch.tensor([[0.0, 0.2, 0.0]]), atol=1e-6)


def _planted_embeddings(n_captions: int, generator: torch.Generator):
    """Image patches live in dims 0..7; words 0..5 copy a patch (+ small noise), words 6..7 point
    into dims 8..15 that no patch uses ("never match the image")."""
    patches = torch.zeros(n_captions, 6, 16)
    patches[:, :, :8] = torch.randn(n_captions, 6, 8, generator=generator)
    words = torch.zeros(n_captions, 8, 16)
    words[:, :6] = patches + 0.05 * torch.randn(n_captions, 6, 16, generator=generator)
    words[:, 6:, 8:] = torch.randn(n_captions, 2, 8, generator=generator)
    return words, patches


def test_planted_unmatched_words_are_masked_more() -> None:
    generator = torch.Generator().manual_seed(1)
    words, patches = _planted_embeddings(400, generator)
    valid = torch.ones(400, 8, dtype=torch.bool)
    noise = token_noise(words, patches, valid)
    probs = masking_probabilities(noise, valid, p=0.15)
    assert probs[:, 6:].mean() > 3 * probs[:, :6].mean()
    tokens = torch.randint(1, 1000, (400, 8), generator=generator)
    masked = sample_token_masking(tokens, probs, MASK_ID, seeds=masking_seeds(torch.arange(400), 0, 0))
    rate_noisy = masked.selected[:, 6:].float().mean()
    rate_clean = masked.selected[:, :6].float().mean()
    assert rate_noisy > 3 * rate_clean
    # realised ratio follows the probabilities; their mean exceeds p here because matched words
    # get r' < 0 and are clipped to 0 (the clipping effect documented in masking.py)
    assert masked.selected.float().mean() == pytest.approx(float(probs.mean()), abs=0.02)
    assert float(probs.mean()) > 0.15


def test_bert_replacement_and_labels() -> None:
    tokens = torch.randint(1, 40000, (300, 40), generator=torch.Generator().manual_seed(2))
    tokens[:, 0] = 49406
    probs = torch.full(tokens.shape, 0.5)
    probs[:, 0] = 0.0  # [SOS]-like position is never selected
    out = sample_token_masking(tokens, probs, MASK_ID, seeds=masking_seeds(torch.arange(300), 3, 7))
    sel = out.selected
    assert not sel[:, 0].any()
    assert sel.float().mean() == pytest.approx(0.5 * 39 / 40, abs=0.02)
    became_mask = (out.tokens == MASK_ID) & sel
    unchanged = (out.tokens == tokens) & sel
    assert became_mask.sum() / sel.sum() == pytest.approx(0.8, abs=0.02)
    assert unchanged.sum() / sel.sum() == pytest.approx(0.1 + 0.1 / 40000, abs=0.02)
    assert torch.all(out.tokens[~sel] == tokens[~sel])
    assert torch.all(out.labels[sel] == tokens[sel]) and torch.all(out.labels[~sel] == IGNORE_INDEX)
    assert int(out.tokens.max()) <= 49406 and int(out.tokens[sel].min()) >= 1


def test_em_and_nam_differ_only_in_probabilities() -> None:
    tokens = torch.randint(1, 5000, (64, 20), generator=torch.Generator().manual_seed(3))
    valid = torch.ones_like(tokens, dtype=torch.bool)
    em = equal_masking_probabilities(valid, 0.15)
    nam = masking_probabilities(torch.rand(64, 20, generator=torch.Generator().manual_seed(4)), valid, 0.15)
    seeds = masking_seeds(torch.arange(64), epoch=2, base_seed=5)
    out_em = sample_token_masking(tokens, em, MASK_ID, seeds=seeds)
    out_nam = sample_token_masking(tokens, nam, MASK_ID, seeds=seeds)
    both = out_em.selected & out_nam.selected
    assert both.any()
    assert torch.equal(out_em.tokens[both], out_nam.tokens[both])  # same replacement where both select
    higher = nam >= em
    assert torch.all(out_nam.selected[higher] >= out_em.selected[higher])  # same uniform draws
    again = sample_token_masking(tokens, em, MASK_ID, seeds=seeds)
    assert torch.equal(again.tokens, out_em.tokens)


def test_masks_do_not_depend_on_batch_composition() -> None:
    tokens = torch.randint(1, 5000, (4, 12), generator=torch.Generator().manual_seed(5))
    probs = torch.full(tokens.shape, 0.3)
    ids = torch.tensor([10, 11, 12, 13])
    full = sample_token_masking(tokens, probs, MASK_ID, seeds=masking_seeds(ids, 1, 0))
    part = sample_token_masking(tokens[2:], probs[2:], MASK_ID, seeds=masking_seeds(ids[2:], 1, 0))
    assert torch.equal(full.tokens[2:], part.tokens)
    other_epoch = sample_token_masking(tokens, probs, MASK_ID, seeds=masking_seeds(ids, 2, 0))
    assert not torch.equal(full.selected, other_epoch.selected)
