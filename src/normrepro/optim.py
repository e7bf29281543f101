"""Optimizers (SGD with optional momentum, Adam, RMSProp, Adagrad) and learning-rate schedules from config."""

from __future__ import annotations

import math

import torch

from normrepro.errors import ConfigError


def _sgd(params, lr, cfg):
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)


def _adam(params, lr, cfg):
    return torch.optim.Adam(params, lr=lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)


def _rmsprop(params, lr, cfg):
    return torch.optim.RMSprop(params, lr=lr, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)


def _adagrad(params, lr, cfg):
    # Duchi et al. 2011: each coordinate's step is lr / (sqrt(sum of its squared gradients) + eps)
    return torch.optim.Adagrad(params, lr=lr, eps=cfg.eps, weight_decay=cfg.weight_decay)


# optim.name -> builder(params, lr, optim config)
OPTIMIZERS = {"sgd": _sgd, "adam": _adam, "rmsprop": _rmsprop, "adagrad": _adagrad}

# optim.schedule.kind -> factor(step, schedule config, total steps): the multiplier of the base LR
SCHEDULES = {
    "constant": lambda step, cfg, total: 1.0,
    "step": lambda step, cfg, total: cfg.gamma ** sum(step >= m * total for m in cfg.milestones),
    "cosine": lambda step, cfg, total: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total)),
    # [OWN]'s VGG runs: lr0 * final_ratio^(t / T), from lr0 down to lr0 * final_ratio
    "exponential": lambda step, cfg, total: cfg.final_ratio ** (min(step, total) / total),
}


def build_optimizer(params, cfg) -> torch.optim.Optimizer:
    if cfg.name not in OPTIMIZERS:
        raise ConfigError(f"unknown optim.name {cfg.name!r}; valid: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[cfg.name](params, cfg.lr * cfg.lr_mult, cfg)


def build_schedule(optimizer, cfg, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A multiplier of the base LR as a function of the step (stepped once per SGD step)."""
    if cfg.kind not in SCHEDULES:
        raise ConfigError(f"unknown optim.schedule.kind {cfg.kind!r}; valid: {', '.join(SCHEDULES)}")
    factor = SCHEDULES[cfg.kind]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: factor(step, cfg, total_steps))
