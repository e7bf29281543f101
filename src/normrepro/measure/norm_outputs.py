"""What each normalization layer of a network outputs before its affine (gamma, beta): the standardized or
whitened values that the decorrelation and disturbance instruments measure.

``NormInputs`` hooks the normalization of every ``NormAct`` block (layers numbered 1.. from the input) and
records its input during one forward; :func:`normalized_output` then recomputes the layer's normalized
output from that input, with the batch's statistics or the running ones, without changing any state.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from normrepro.models.common import NormAct
from normrepro.norms.manual_bn import BatchNormBase
from normrepro.norms.whitening import GroupWhiteningBase, as_samples, group_sizes


def normalized_output(module: nn.Module, x: torch.Tensor, batch: bool) -> torch.Tensor | None:
    """The layer's output for input ``x`` before the affine, as (m, C) samples; None for a layer that does
    not normalize over a batch (identity, LN, GN)."""
    if isinstance(module, GroupWhiteningBase):
        return as_samples(module.normalized(x, batch)).t()
    if isinstance(module, (_BatchNorm, BatchNormBase)):
        s = as_samples(x).t()
        if batch:
            mean, var = s.mean(0), s.var(0, unbiased=False)
        else:
            mean, var = module.running_mean, module.running_var
        return (s - mean) / torch.sqrt(var + module.eps)
    return None


def feature_groups(module: nn.Module, num_features: int, group_size: int) -> list[tuple[int, int]]:
    """A whitening layer's own groups; for any other layer the groups ``group_size`` would give it, so the
    within-group measure covers the same pairs of units in every arm."""
    if isinstance(module, GroupWhiteningBase):
        return module.whitening_groups()
    size, n_full, rest = group_sizes(num_features, group_size)
    return [(i * size, (i + 1) * size) for i in range(n_full)] + ([(n_full * size, num_features)] if rest else [])


class NormInputs:
    """Records the input of every NormAct's normalization during the forwards run inside ``with self:``."""

    def __init__(self, model: nn.Module):
        self.norms = [b.norm for b in model.modules() if isinstance(b, NormAct)]
        self.inputs: dict[int, torch.Tensor] = {}
        self._handles = []

    def __enter__(self) -> NormInputs:
        self.inputs = {}
        self._handles = [n.register_forward_pre_hook(self._hook(i)) for i, n in enumerate(self.norms)]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def _hook(self, i: int):
        def hook(_module, inputs):
            self.inputs[i] = inputs[0].detach()
        return hook
