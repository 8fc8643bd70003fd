"""GradNorm (seed 000 Eq. 5–6): weights move toward the slower task; renormalisation and clipping."""

import torch
from torch import nn

from training.gradnorm import GradNorm


def test_gradnorm_moves_weight_to_slower_task() -> None:
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y_fast = x @ torch.randn(8, 1)
    y_slow = torch.sin(3 * x @ torch.randn(8, 1)) * torch.cos(2 * x[:, :1] * x[:, 1:2])
    shared = nn.Sequential(nn.Linear(8, 32), nn.Tanh())
    heads = nn.ModuleList([nn.Linear(32, 1), nn.Linear(32, 1)])
    opt = torch.optim.Adam([*shared.parameters(), *heads.parameters()], lr=1e-2)
    gn = GradNorm(["fast", "slow"], alpha=1.5, lr=0.025, log_reg=1e-3)
    first = None
    for _ in range(150):
        h = shared(x)
        losses = {"fast": nn.functional.mse_loss(heads[0](h), y_fast),
                  "slow": nn.functional.mse_loss(heads[1](h), y_slow)}
        first = first or {k: v.item() for k, v in losses.items()}
        out = gn.step(losses, shared[0].weight)
        total = sum(w * losses[t] for w, t in zip(out["weights"], gn.tasks, strict=True))
        opt.zero_grad()
        total.backward()
        opt.step()
    ratio = {k: losses[k].item() / first[k] for k in first}
    assert ratio["slow"] > ratio["fast"]  # the toy really has a slow task
    w = gn.weights
    assert w[1] > w[0]
    assert torch.isclose(w.sum(), torch.tensor(2.0), atol=1e-4)


def test_gradnorm_clips_and_round_trips_state() -> None:
    gn = GradNorm(["a", "b"], clip=(1e-4, 10.0))
    with torch.no_grad():
        gn.log_weights.copy_(torch.tensor([30.0, -30.0]))
    p = torch.randn(3, 3, requires_grad=True)
    gn.step({"a": (p**2).sum(), "b": p.sum()}, p)
    assert gn.weights.max() <= 10.0 + 1e-4 and gn.weights.min() >= 1e-4 - 1e-9
    other = GradNorm(["a", "b"])
    other.load_state_dict(gn.state_dict())
    assert torch.equal(other.weights, gn.weights)
