"""Warmup + cosine LR schedule built by transformers' scheduler (training/engine/optim.py): the curve's shape and
the same factor for every parameter group (``group_lr``)."""

from __future__ import annotations

import functools

import pytest
import torch

from training.config import ScheduleConfig
from training.engine.optim import build_scheduler


def _curve(cfg: ScheduleConfig, steps_per_epoch: int, lrs=(1e-3, 1e-5)) -> tuple[list[list[float]], object]:
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in lrs]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs, strict=True)])
    sched = build_scheduler(opt, cfg, steps_per_epoch)
    out = []
    for _ in range(steps_per_epoch * cfg.epochs):
        out.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return out, sched


def test_warmup_then_cosine_to_the_floor_with_one_factor_for_all_groups():
    cfg = ScheduleConfig(epochs=4, warmup_epochs=1, warmup_start_ratio=0.1, min_lr_ratio=0.05)
    curve, sched = _curve(cfg, steps_per_epoch=10)
    first = [lr for lr, _ in curve]
    assert first[0] == pytest.approx(0.1e-3)
    assert max(first) == pytest.approx(1e-3)
    peak = first.index(max(first))
    assert 8 <= peak <= 10  # end of the warmup epoch
    assert all(a <= b + 1e-15 for a, b in zip(first[:peak], first[1:peak + 1], strict=True))  # rising
    assert all(a >= b - 1e-15 for a, b in zip(first[peak:-1], first[peak + 1:], strict=True))  # falling
    assert first[-1] == pytest.approx(0.05e-3, rel=0.05)
    assert all(lo / hi == pytest.approx(1e-2) for hi, lo in curve)  # the same factor for both groups
    # built by the library, not by hand
    fn = sched.lr_lambdas[0]
    assert isinstance(fn, functools.partial) and fn.func.__module__ == "transformers.optimization"


def test_max_steps_ends_the_cosine_early_and_no_warmup_starts_at_the_peak():
    cfg = ScheduleConfig(epochs=10, warmup_epochs=0, min_lr_ratio=0.0, max_steps=20)
    curve, _ = _curve(cfg, steps_per_epoch=10, lrs=(1.0,))
    assert curve[0][0] == pytest.approx(1.0, rel=0.02)
    assert curve[19][0] == pytest.approx(0.0, abs=0.01)
