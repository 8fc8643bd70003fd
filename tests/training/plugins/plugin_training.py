"""A minimal local training loop + retrieval Rank-1 (the engine's trainer/evaluator are not used here so the
learning tests do not depend on them; they exercise only the method contract)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.methods.base import TrainingMethod


def train_steps(method: TrainingMethod, data, steps: int, batch_size: int, lr: float, seed: int) -> list[float]:
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=lr)
    generator = torch.Generator().manual_seed(seed)
    n = data.images.shape[0]
    losses = []
    method.train()
    order = torch.randperm(n, generator=generator)
    cursor = 0
    for epoch in range(10_000):
        method.on_epoch_start(epoch)
        order = torch.randperm(n, generator=generator)
        for cursor in range(0, n - batch_size + 1, batch_size):
            out = method(data.batch(order[cursor : cursor + batch_size]))
            loss = sum(v for k, v in out.items() if k.endswith("_loss"))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            if len(losses) >= steps:
                return losses
        method.on_epoch_end(epoch)
    return losses


@torch.no_grad()
def rank1(method: TrainingMethod, gallery, queries) -> float:
    method.eval()
    image = F.normalize(method.encode_image(gallery.images), dim=-1)
    text = F.normalize(method.encode_text(queries.tokens), dim=-1)
    best = (text @ image.t()).argmax(dim=1)
    return float((gallery.person_ids[best] == queries.person_ids).float().mean())
