"""BDAM's global text feature (``text_pooling``): a random-weight BERT's [CLS] state ignores the caption, so
stage-1 retrieval gives every query the same ranking; the masked token mean carries the words (module
docstring of training/methods/bdam.py)."""

import pytest
import torch
import torch.nn.functional as F

import training.methods  # noqa: F401  (registers "bdam")
from pedes_core.errors import ConfigError
from training.registry import METHODS


def _build(cfg, tok, **params):
    torch.manual_seed(0)
    return METHODS.build("bdam", model=cfg, num_classes=12, num_captions=0, tokenizer=tok, depth=1, heads=2,
                         fusion="mlp", fusion_dim=32, use_bdam=False, fusion_text="caption", gradnorm=False,
                         disabled_losses=["info", "triplet"], **params)


def _offdiag_cos(f: torch.Tensor) -> float:
    f = F.normalize(f.float(), dim=-1)
    sim = f @ f.T
    return float(sim[~torch.eye(len(f), dtype=torch.bool)].mean())


def _distinct_rankings(method, data) -> int:
    """How many different gallery orders the test queries get from stage 1 (1 = one ranking for all)."""
    with torch.no_grad():
        q = F.normalize(method.encode_text(method.tokenizer(data["query"].captions)).float(), dim=-1)
        g = F.normalize(method.encode_image(data["gallery"].images).float(), dim=-1)
    return len({tuple(row.tolist()) for row in (q @ g.T).argsort(dim=1, descending=True)[:, :5]})


def _train_itc(method, data, steps: int = 60) -> None:
    train = data["train"]
    opt = torch.optim.AdamW(method.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    method.train()
    for _ in range(steps):
        idx = torch.randperm(len(train.pids), generator=g)[:16]
        batch = {"images": train.images[idx], "text_tokens": method.tokenizer([train.captions[i] for i in idx]),
                 "person_ids": train.pids[idx]}
        loss = method(batch)["bdam_loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    method.eval()


def test_cls_of_a_random_bert_ignores_the_caption_and_the_mean_does_not(tiny_model_config, clip_tokenizer,
                                                                           clothes_change_data) -> None:
    caps = clothes_change_data["query"].captions
    feats = {}
    for pooling in ("cls", "mean"):
        m = _build(tiny_model_config, clip_tokenizer, text_pooling=pooling).eval()
        with torch.no_grad():
            feats[pooling] = m.encode_text_states(clip_tokenizer(caps)).pooled
    assert _offdiag_cos(feats["cls"]) > 0.999  # one vector for every caption
    assert _offdiag_cos(feats["mean"]) < _offdiag_cos(feats["cls"]) - 0.01


def test_mean_pooling_ignores_padding(tiny_model_config, clip_tokenizer, clothes_change_data) -> None:
    m = _build(tiny_model_config, clip_tokenizer, text_pooling="mean").eval()
    caps = clothes_change_data["query"].captions[:4]
    with torch.no_grad():
        short = m.encode_text(clip_tokenizer(caps))
        padded = m.encode_text(clip_tokenizer([*caps, caps[0] + " and" * 20]))[:4]  # wider padded batch
    torch.testing.assert_close(short, padded, atol=1e-5, rtol=1e-4)


def test_after_training_cls_queries_share_one_ranking_and_mean_queries_do_not(tiny_model_config, clip_tokenizer,
                                                                             clothes_change_data) -> None:
    rankings = {}
    for pooling in ("cls", "mean"):
        m = _build(tiny_model_config, clip_tokenizer, text_pooling=pooling)
        _train_itc(m, clothes_change_data)
        rankings[pooling] = _distinct_rankings(m, clothes_change_data)
    print(f"\ndistinct top-5 rankings over the 12 queries after 60 itc steps: {rankings}")
    assert rankings["mean"] > rankings["cls"]


def test_unknown_pooling_is_a_config_error(tiny_model_config, clip_tokenizer) -> None:
    with pytest.raises(ConfigError, match="text_pooling"):
        _build(tiny_model_config, clip_tokenizer, text_pooling="max")
