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
               "elu": lambda: nn.ELU(alpha=1.0),
               "linear": nn.Identity}  # the identity, for Saxe et al. 2014's deep linear networks
PLACEMENTS = ("before_act", "after_act")
# model.init -> re-initialization of one Linear/Conv weight w, given model.init_std and the gain torch
# recommends for model.activation (nn.init.calculate_gain: linear 1, tanh 5/3, relu sqrt(2)); None keeps
# torch's default
INITS = {
    "default": None,
    "normal": lambda w, std, gain: nn.init.normal_(w, 0.0, std),
    # Glorot & Bengio 2010: Var(w) = 2 / (fan_in + fan_out)
    "xavier": lambda w, std, gain: nn.init.xavier_normal_(w),
    # He et al. 2015: Var(w) = 2 / fan_in
    "kaiming": lambda w, std, gain: nn.init.kaiming_normal_(w, nonlinearity="relu"),
    # Saxe et al. 2014, rows scaled by sqrt(2) (He's ReLU gain) whatever the activation
    "orthogonal": lambda w, std, gain: nn.init.orthogonal_(w, gain=math.sqrt(2.0)),
    # Saxe et al. 2014 with the activation's gain (1 for a linear network, as in their deep linear nets)
    "orthogonal_act": lambda w, std, gain: nn.init.orthogonal_(w, gain=gain),
    # every weight equal to init_std: the units of a layer start identical (no symmetry breaking)
    "constant": lambda w, std, gain: nn.init.constant_(w, std),
    # Glorot & Bengio 2010 eq. (1), the "commonly used heuristic": U(-1/sqrt(n), 1/sqrt(n)), n = fan_in,
    # so n Var(w) = 1/3 and the variance shrinks by 3 per layer in the linear regime (their eq. 16 discussion)
    "uniform_naive": lambda w, std, gain: _uniform_naive(w),
}


def _uniform_naive(w: torch.Tensor) -> torch.Tensor:
    bound = 1.0 / math.sqrt(nn.init._calculate_fan_in_and_fan_out(w)[0])
    return nn.init.uniform_(w, -bound, bound)


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
def init_weights(model: nn.Module, scheme: str, std: float, activation: str = "relu") -> None:
    """Re-initialize every Linear/Conv weight by ``scheme`` (biases to zero); ``default`` keeps torch's.
    ``activation`` gives the gain of ``orthogonal_act`` (torch's calculate_gain for it)."""
    if scheme not in INITS:
        raise ValueError(f"unknown init {scheme!r}; valid: {', '.join(INITS)}")
    reinit = INITS[scheme]
    if reinit is None:
        return
    gain = nn.init.calculate_gain(activation if activation in ("relu", "tanh", "sigmoid") else "linear")
    for m in model.modules():
        if not isinstance(m, (nn.Linear, nn.Conv2d)):
            continue
        reinit(m.weight, std, gain)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
