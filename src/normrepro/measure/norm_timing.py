"""The cost of one normalization layer: milliseconds per forward + backward, per group size
(``probes.norm_timing_groups``).

[DBN] and [IterNorm] both report that whitening costs more than standardization: an eigendecomposition
(PCA/ZCA) or T Newton iterations (IterNorm) per group per step, O(g^3) per group of g features, against BN's
O(1) per unit; [IterNorm] argues its matrix products are cheaper than an eigendecomposition on GPUs. The
run's own throughput (``samples_per_s``) shows the whole step; this isolates the layer and varies the group
size. At the end of training, a fresh layer of the run's kind (``norm.*`` settings, the first hidden width,
the training batch size) runs forward and backward on a fixed random batch: a few warm-up passes, then
``REPEATS`` timed ones; the row is their median. On the run's device and threads, so only comparisons
within one machine mean anything.
"""

from __future__ import annotations

import statistics
import time

import torch

from normrepro.measure.base import Context, Instrument
from normrepro.norms import make_norm

WARMUP, REPEATS = 3, 15


def time_layer(layer, x: torch.Tensor, weight: torch.Tensor) -> float:
    """Median milliseconds of one forward + backward of ``layer`` on ``x`` (loss = sum(weight * y))."""
    times = []
    for i in range(WARMUP + REPEATS):
        xi = x.detach().requires_grad_(True)
        if x.is_cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        (layer(xi) * weight).sum().backward()
        if x.is_cuda:
            torch.cuda.synchronize()
        if i >= WARMUP:
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


class NormTiming(Instrument):
    """Rows ``norm_step_ms`` of split ``train`` at the end, ``layer`` = ``g=<features per group>``."""

    name = "norm_timing"

    def __init__(self, nc, width: int, batch_size: int, groups: list[int]):
        self.nc, self.width, self.batch_size, self.groups = nc, width, batch_size, groups

    @classmethod
    def build(cls, cfg, model, splits, batches):
        if not cfg.probes.norm_timing_groups or cfg.norm.kind == "none" or cfg.model.arch != "mlp":
            return None
        return cls(cfg.norm, cfg.model.widths[0], cfg.train.batch_size, list(cfg.probes.norm_timing_groups))

    def at_end(self, ctx: Context, step: int) -> None:
        device = next(ctx.model.parameters()).device
        g = torch.Generator().manual_seed(0)
        x = torch.randn(self.batch_size, self.width, generator=g).to(device)
        weight = torch.randn(self.batch_size, self.width, generator=g).to(device)
        nc = self.nc
        for size in self.groups:
            layer = make_norm(nc.kind, self.width, 0, eps=nc.eps, momentum_pytorch=nc.momentum_pytorch,
                              affine=nc.affine, group_size=size, iter_T=nc.iter_T).to(device).train()
            ctx.write(step, "train", "norm_step_ms", time_layer(layer, x, weight), layer=f"g={size}")
