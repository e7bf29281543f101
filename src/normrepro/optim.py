"""Optimizers (SGD with optional momentum, Adam, RMSProp) and learning-rate schedules from config."""

from __future__ import annotations

import math

import torch

from normrepro.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "rmsprop")
SCHEDULES = ("constant", "step", "cosine", "exponential")


def build_optimizer(params, cfg) -> torch.optim.Optimizer:
    lr = cfg.lr * cfg.lr_mult
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(cfg.betas), eps=cfg.eps,
                                weight_decay=cfg.weight_decay)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay)
    raise ConfigError(f"unknown optim.name {cfg.name!r}; valid: {', '.join(OPTIMIZERS)}")


def build_schedule(optimizer, cfg, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A multiplier of the base LR as a function of the step (stepped once per SGD step)."""
    kind = cfg.kind
    if kind == "constant":
        def factor(step):
            return 1.0
    elif kind == "step":
        bounds = [m * total_steps for m in cfg.milestones]

        def factor(step):
            return cfg.gamma ** sum(step >= b for b in bounds)
    elif kind == "cosine":
        def factor(step):
            return 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    elif kind == "exponential":  # [OWN]'s VGG runs: lr0 * final_ratio^(t / T), from lr0 down to lr0 * final_ratio
        def factor(step):
            return cfg.final_ratio ** (min(step, total_steps) / total_steps)
    else:
        raise ConfigError(f"unknown optim.schedule.kind {kind!r}; valid: {', '.join(SCHEDULES)}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
