"""Optimizer (Adam as seed 002 §4.2, or AdamW) and the per-step LR schedule: linear warmup from
``warmup_start_ratio × lr`` to ``lr``, then cosine decay to ``min_lr_ratio × lr``.

Parameter groups with their own learning rate (general mechanism): a method may define
``optimizer_groups() -> {name: [parameters]}`` naming groups of its parameters (e.g. CFAM, seed 004 §5.1:
``pretrained`` CLIP towers vs ``new`` randomly initialised modules); parameters in no group form the
group ``default``. ``optim.group_lr: {name: lr}`` gives a group its own initial LR (absolute; a group
not listed uses ``optim.lr``); naming a group the method does not define is a ConfigError. The schedule
multiplies every group's initial LR by the same warmup/cosine factor. Each group is split into a
weight-decay part (≥ 2-d weights) and a no-decay part (biases, norms, other 1-d parameters and scalars).
"""

from __future__ import annotations

import torch
from torch import nn

from pedes_core.errors import ConfigError
from training.config import OptimConfig, ScheduleConfig

DEFAULT_GROUP = "default"


def named_groups(model: nn.Module) -> dict[int, str]:
    """``id(parameter) → group name`` from the model's ``optimizer_groups()`` (first group wins)."""
    hook = getattr(model, "optimizer_groups", None)
    if not callable(hook):
        return {}
    assigned: dict[int, str] = {}
    for name, params in hook().items():
        for param in params:
            assigned.setdefault(id(param), name)
    return assigned


def parameter_groups(model: nn.Module, weight_decay: float, group_lr: dict[str, float] | None = None) -> list[dict]:
    """Optimizer param groups: per named group (module docstring) a decay and a no-decay part."""
    assigned = named_groups(model)
    group_lr = dict(group_lr or {})
    known = {DEFAULT_GROUP, *assigned.values()}
    unknown = sorted(set(group_lr) - known)
    if unknown:
        raise ConfigError(f"optim.group_lr: unknown parameter group(s) {unknown}; "
                          f"{type(model).__name__} defines {sorted(known)}")
    buckets: dict[str, tuple[list, list]] = {}
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay, no_decay = buckets.setdefault(assigned.get(id(p), DEFAULT_GROUP), ([], []))
        (decay if p.ndim >= 2 else no_decay).append(p)
    groups = []
    for name, (decay, no_decay) in buckets.items():
        for params, wd in ((decay, weight_decay), (no_decay, 0.0)):
            if not params:
                continue
            group = {"params": params, "weight_decay": wd, "group": name}
            if name in group_lr:
                group["lr"] = group_lr[name]
            groups.append(group)
    return groups


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    groups = parameter_groups(model, cfg.weight_decay, cfg.group_lr)
    cls = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
    return cls(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)


def group_learning_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """The current LR of every named parameter group (``lr_<group>`` in the training log)."""
    out: dict[str, float] = {}
    for group in optimizer.param_groups:
        out.setdefault(str(group.get("group", DEFAULT_GROUP)), float(group["lr"]))
    return out


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step warmup + cosine through transformers' ``get_cosine_with_min_lr_schedule_with_warmup_lr_rate``
    (a ``LambdaLR``: one factor for every group, so ``group_lr`` ratios hold): warmup from
    ``warmup_start_ratio × lr`` to ``lr`` over ``warmup_epochs``, then cosine to ``min_lr_ratio × lr`` at the
    last step (``max_steps`` when it ends the run earlier)."""
    from transformers.optimization import get_cosine_with_min_lr_schedule_with_warmup_lr_rate

    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    warmup = min(int(round(cfg.warmup_epochs * steps_per_epoch)), max(0, total - 1))
    return get_cosine_with_min_lr_schedule_with_warmup_lr_rate(
        optimizer, num_warmup_steps=warmup, num_training_steps=total, min_lr_rate=cfg.min_lr_ratio,
        warmup_lr_rate=cfg.warmup_start_ratio,
    )
