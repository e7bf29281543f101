"""Pieces every architecture shares: activations, the norm/activation block with its placement, and init."""

from __future__ import annotations

import math

import torch
from torch import nn

# model.activation -> a fresh module. The ReLU variants keep a gradient for x < 0, so a unit pushed below zero
# on every input can still come back: LeakyReLU slope 0.01 (Maas et al. 2013), PReLU one learned slope per
# layer starting at 0.25 (He et al. 2015, its channel-shared variant), ELU alpha = 1 (Clevert et al. 2016).
ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
               "lrelu": lambda: nn.LeakyReLU(0.01), "prelu": lambda: nn.PReLU(num_parameters=1, init=0.25),
               "elu": lambda: nn.ELU(alpha=1.0)}
PLACEMENTS = ("before_act", "after_act")
# model.init -> re-initialization of one Linear/Conv weight (None: keep torch's default)
INITS = {
    "default": None,
    "normal": lambda w, std: nn.init.normal_(w, 0.0, std),
    "xavier": lambda w, std: nn.init.xavier_normal_(w),  # Glorot & Bengio 2010: Var(w) = 2 / (fan_in + fan_out)
    "kaiming": lambda w, std: nn.init.kaiming_normal_(w, nonlinearity="relu"),  # He et al. 2015: 2 / fan_in
    "orthogonal": lambda w, std: nn.init.orthogonal_(w, gain=math.sqrt(2.0)),  # Saxe et al. 2014
}


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class NormAct(nn.Module):
    """Normalization and nonlinearity in either order.

    ``before_act`` is [BN]'s choice (Sec. 3.2): normalize x = Wu, a sum of many terms and so close to Gaussian
    ([S0]'s central-limit argument); ``after_act`` normalizes the nonlinearity's output instead.
    The activation lives in ``self.act`` so probes can hook its input (the pre-activation) and output.
    """

    def __init__(self, norm: nn.Module, act: nn.Module, placement: str):
        super().__init__()
        if placement not in PLACEMENTS:
            raise ValueError(f"unknown placement {placement!r}; valid: {', '.join(PLACEMENTS)}")
        self.norm, self.act, self.placement = norm, act, placement

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.placement == "before_act":
            return self.act(self.norm(z))
        return self.norm(self.act(z))


@torch.no_grad()
def init_weights(model: nn.Module, scheme: str, std: float) -> None:
    """Re-initialize every Linear/Conv weight by ``scheme`` (biases to zero); ``default`` keeps torch's."""
    if scheme not in INITS:
        raise ValueError(f"unknown init {scheme!r}; valid: {', '.join(INITS)}")
    reinit = INITS[scheme]
    if reinit is None:
        return
    for m in model.modules():
        if not isinstance(m, (nn.Linear, nn.Conv2d)):
            continue
        reinit(m.weight, std)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
