"""Test-time statistics of BN other than the running averages: precise population statistics and the
statistics of the test batch itself.

Precise statistics ("PreciseBN", [WJ] Wu & Johnson 2021, Sec. 3.2): freeze the weights, run training images
through the network *in training mode* (every BN layer normalizing with the statistics of its normalization
batch, so each layer sees the inputs it saw during training) and average each layer's per-batch statistics
with equal weights:

    mu  = 1/K sum_k mu_k,        sigma^2 = 1/K sum_k (sigma_k^2 + mu_k^2) - mu^2

which is the population mean and (biased) variance of the layer's inputs over those K batches, with none of
the exponential average's lag behind the weights. Batches are as large as the training batch and ghost-batch
layers normalize over their groups, as in training.

Batch statistics at test time (``modes.whole_batch_statistics``): BN normalizes each test batch with that
batch's own statistics (``modes.batch_statistics``) over the *whole* test batch, whatever the
training normalization batch was.
"""

from __future__ import annotations

import torch
from torch import nn

from normrepro.norms.ghost_bn import GhostBatchNorm
from normrepro.norms.modes import BATCH_NORM_TYPES, batch_statistics


def _bn_layers(model: nn.Module) -> list[nn.Module]:
    layers = [m for m in model.modules() if isinstance(m, BATCH_NORM_TYPES)]
    if not layers:
        raise ValueError("the model has no BatchNorm layer")
    return layers


def _group(m: nn.Module, n: int) -> int:
    return m.group_size(n) if isinstance(m, GhostBatchNorm) else n


@torch.no_grad()
def precise_statistics(model: nn.Module, x: torch.Tensor, batch_size: int) -> dict[nn.Module, tuple]:
    """Population (mean, biased variance) of every BN layer's input over ``x``, in batches of ``batch_size``
    (a trailing partial batch is dropped: every normalization batch has the training size)."""
    layers = _bn_layers(model)
    stepwise = [type(m).__name__ for m in layers if m.running_mean.dim() != 1]
    if stepwise:
        raise ValueError(f"precise statistics need one (mean, var) per channel; {stepwise[0]} keeps them per "
                         "time step")
    sums: dict[nn.Module, list] = {m: [0.0, 0.0, 0] for m in layers}

    def record(module, inputs):
        z = inputs[0].double()
        g = _group(module, z.shape[0])
        groups = z.reshape(z.shape[0] // g, g, *z.shape[1:]).transpose(1, 2)  # (groups, C, g, ...)
        flat = groups.reshape(groups.shape[0], groups.shape[1], -1)
        s = sums[module]
        s[0] = s[0] + flat.mean(-1).sum(0)  # sum over groups of each group's mean
        s[1] = s[1] + (flat * flat).mean(-1).sum(0)  # ... and of its mean square
        s[2] += flat.shape[0]

    handles = [m.register_forward_pre_hook(record) for m in layers]
    try:
        with batch_statistics(model):
            n_used = len(x) - len(x) % batch_size
            if n_used == 0:
                raise ValueError(f"need at least one batch of {batch_size} examples, got {len(x)}")
            for batch in x[:n_used].split(batch_size):
                model(batch)
    finally:
        for h in handles:
            h.remove()
    out = {}
    for m, (s_mean, s_sq, k) in sums.items():
        mean = s_mean / k
        out[m] = (mean, (s_sq / k - mean * mean).clamp_min(0.0))
    return out
