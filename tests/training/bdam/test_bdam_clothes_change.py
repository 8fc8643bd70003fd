"""Clothes-change retrieval on synthetic pedestrians: BDAM's identity feature vs the same backbone without BDAM.

Queries describe an identity in outfit 0; targets are the same identity in an unseen outfit 2; distractors are
other identities wearing the query's outfit 0. Both models: same tiny ViT + BERT, same steps, seed and batches;
the fusion (``info``) task is disabled in both to keep the test short (stage-1 features are compared)."""

import torch
import torch.nn.functional as F

from training.losses import hsic
import training.methods  # noqa: F401  (registers "bdam")
from training.registry import METHODS

STEPS = 120


def _train(data, tokenizer, model_cfg, **params):
    torch.manual_seed(0)
    method = METHODS.build("bdam", model=model_cfg, num_classes=12, num_captions=0, tokenizer=tokenizer, depth=1,
                           heads=2, fusion="mlp", fusion_dim=32, disabled_losses=["info"], **params)
    opt = torch.optim.Adam(method.parameters(), lr=2e-3)
    train = data["train"]
    g = torch.Generator().manual_seed(0)
    probe = torch.arange(0, len(train.pids), 2)
    hsic_trace = []
    for step in range(STEPS):
        ids = torch.randperm(12, generator=g)[:6]
        idx = torch.cat([torch.nonzero(train.pids == i).flatten()[torch.randperm(8, generator=g)[:4]] for i in ids])
        batch = {"images": train.images[idx], "text_tokens": tokenizer([train.captions[i] for i in idx]),
                 "person_ids": train.pids[idx], "identity_caption": [train.identity[i] for i in idx],
                 "clothing_caption": [train.clothing[i] for i in idx]}
        method.train()
        loss = method(batch)["bdam_loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if method.bdam is not None and step in (0, STEPS - 1):
            method.eval()
            with torch.no_grad():
                st = method.encode_image_states(train.images[probe])
            hsic_trace.append(hsic(st.f_id, st.f_clo).item())
    return method.eval(), hsic_trace


def _rank1_and_map(method, data, tokenizer) -> tuple[float, float]:
    with torch.no_grad():
        q = F.normalize(method.encode_text(tokenizer(data["query"].captions)), dim=-1)
        gal = F.normalize(method.encode_image(data["gallery"].images), dim=-1)
    sim = q @ gal.T
    match = data["query"].pids[:, None] == data["gallery"].pids[None, :]
    order = sim.argsort(dim=1, descending=True)
    hits = torch.gather(match, 1, order).float()
    r1 = hits[:, 0].mean().item()
    precision = hits.cumsum(1) / torch.arange(1, hits.shape[1] + 1)
    ap = (precision * hits).sum(1) / hits.sum(1)
    return 100 * r1, 100 * ap.mean().item()


def test_bdam_identity_feature_beats_plain_backbone_on_clothes_change(clothes_change_data, clip_tokenizer,
                                                                      tiny_model_config) -> None:
    bdam, trace = _train(clothes_change_data, clip_tokenizer, tiny_model_config)
    plain, _ = _train(clothes_change_data, clip_tokenizer, tiny_model_config, use_bdam=False)
    r1_b, map_b = _rank1_and_map(bdam, clothes_change_data, clip_tokenizer)
    r1_p, map_p = _rank1_and_map(plain, clothes_change_data, clip_tokenizer)
    print(f"\nclothes-change R1/mAP: BDAM {r1_b:.1f}/{map_b:.1f}  plain backbone {r1_p:.1f}/{map_p:.1f}  "
          f"HSIC(f_id, f_clo) {trace[0]:.4g} -> {trace[-1]:.4g}")
    assert map_b > map_p
    assert trace[-1] < trace[0]
