"""Weight reparameterizations, an axis separate from the activation norm (``model.weight_param``).

- ``none``: the layer's weight is a free parameter (the old behaviour).
- ``wn``: Weight Normalization (Salimans & Kingma 2016, Eq. 2): w = g * v / ||v|| per output unit, with
  ``torch.nn.utils.parametrizations.weight_norm`` (dim 0; g starts at ||v||, so the network computes the
  same function at init as the plain one).
- ``own``: Orthogonal Weight Normalization ([OWN], ``own.py``): each group of rows of W orthonormal.

They are applied to every Conv2d / Linear layer except the classifier (the last Linear of the network),
unless ``last=True``: [OWN]'s VGG-style CIFAR model (official code, models/CIFAR/) replaces the convolutions
and keeps the classifier a plain ``nn.Linear``; a 10-row classifier also says little about filter
redundancy. Weights are reparameterized after initialization, so V (or v) starts from the configured init.
"""

from __future__ import annotations

import math

from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from normrepro.norms.own import OrthogonalWeight


def _wn(module: nn.Module, **own) -> None:
    weight_norm(module, name="weight", dim=0)


def _own(module: nn.Module, own_group_size: int, own_eps: float, own_scale: float) -> None:
    parametrize.register_parametrization(module, "weight", OrthogonalWeight(fan_in(module), own_group_size,
                                                                             own_eps, own_scale))


# model.weight_param -> how one layer's weight is reparameterized (None: plain weights)
WEIGHT_PARAMS = {"none": None, "wn": _wn, "own": _own}
LAYER_TYPES = (nn.Conv2d, nn.Linear)


def reparameterized_layers(model: nn.Module, last: bool = False) -> list[tuple[str, nn.Module]]:
    """The (name, module) pairs a weight reparameterization applies to, in module order."""
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, LAYER_TYPES)]
    linears = [name for name, m in layers if isinstance(m, nn.Linear)]
    if not last and linears:
        layers = [(name, m) for name, m in layers if name != linears[-1]]
    return layers


def fan_in(module: nn.Module) -> int:
    w = module.weight
    return math.prod(w.shape[1:])


def apply_weight_param(model: nn.Module, kind: str, *, last: bool = False, own_group_size: int = 64,
                       own_eps: float = 1e-5, own_scale: float = math.sqrt(2.0)) -> nn.Module:
    """Reparameterize the weights of ``model``'s layers in place; returns the model."""
    if kind not in WEIGHT_PARAMS:
        raise ValueError(f"unknown weight_param {kind!r}; valid: {', '.join(WEIGHT_PARAMS)}")
    reparameterize = WEIGHT_PARAMS[kind]
    if reparameterize is None:
        return model
    for _name, m in reparameterized_layers(model, last):
        reparameterize(m, own_group_size=own_group_size, own_eps=own_eps, own_scale=own_scale)
    return model


def own_parametrization(module: nn.Module) -> OrthogonalWeight | None:
    """The OWN parametrization of a layer's weight, if it has one."""
    if not parametrize.is_parametrized(module, "weight"):
        return None
    found = [p for p in module.parametrizations["weight"] if isinstance(p, OrthogonalWeight)]
    return found[0] if found else None
