"""Stochastic normalization disturbance (SND; [IterNorm] Huang et al., CVPR 2019, Sec. 4, Definition 1):
how much one example's normalized output depends on which other examples share its mini-batch
(``probes.snd_batch_sizes``).

For an example x and a normalization F that uses the statistics of a batch B containing x,

    SND(x) = E_B || F(x; B) - E_B' F(x; B') ||_2

[DBN] Sec. 3 explains PCA whitening's failure this way ("stochastic axis swapping": the batch's principal
axes reorder and flip, so x's coordinates change from batch to batch); [IterNorm] measures SND and finds
PCA's large, ZCA's smaller, and BN's and ZCA's shrinking as the batch grows.

Estimated here, per layer, at the start and the end of training: each of the first ``probes.snd_examples``
probe examples is put into ``probes.snd_batches`` (K) random batches of n - 1 other probe examples (one fixed
draw for every run, so arms and seeds see the same batches), the whole network runs on each batch with batch
statistics (as in training; running statistics untouched), and the layer's normalized output of x before
the affine is read. ``snd`` is the mean over the K batches of the L2 distance from the mean over the K
batches, divided by sqrt(C) (C = the layer's units) so that it is a root-mean-square per unit, in units of
the normalized output (whose per-unit variance is ~1), comparable between layers; then averaged over the
examples. One row per layer and batch size n, with ``bn_mode`` ``batch@n``. Layers that do not normalize
over the batch have no rows.
"""

from __future__ import annotations

import torch

from normrepro.measure.base import Context, Instrument, probe_examples, write_rows
from normrepro.measure.norm_outputs import NormInputs, normalized_output
from normrepro.norms.modes import batch_statistics

SEED = 0  # the draw of the random batches: the same for every run


def spread(outputs: torch.Tensor) -> float:
    """(K, C) outputs of one example in K batches -> mean_k ||F_k - mean F|| / sqrt(C)."""
    o = outputs.double()
    return ((o - o.mean(0)).norm(dim=1).mean() / o.shape[1] ** 0.5).item()


def random_batches(pool: int, example: int, n: int, k: int, g: torch.Generator) -> list[torch.Tensor]:
    """K index batches of size n: ``example`` first, then n - 1 distinct others from range(pool)."""
    others = torch.tensor([i for i in range(pool) if i != example])
    batches = []
    for _ in range(k):
        pick = others[torch.randperm(len(others), generator=g)[: n - 1]]
        batches.append(torch.cat([torch.tensor([example]), pick]))
    return batches


class Disturbance(Instrument):
    """Rows ``snd`` of split ``probe`` per layer and batch size, at the start and at the end of training."""

    name = "disturbance"

    def __init__(self, model, x: torch.Tensor, sizes: list[int], batches: int, examples: int):
        self.inputs = NormInputs(model)
        self.x, self.sizes, self.k, self.examples = x, [n for n in sizes if n <= len(x)], batches, examples

    @classmethod
    def build(cls, cfg, model, splits, batches):
        if not cfg.probes.snd_batch_sizes:
            return None
        p = cfg.probes
        return cls(model, probe_examples(cfg, splits)[0], list(p.snd_batch_sizes), p.snd_batches, p.snd_examples)

    def at_start(self, ctx: Context, step: int) -> None:
        write_rows(ctx, step, "probe", self.rows(ctx.model))

    def at_end(self, ctx: Context, step: int) -> None:
        write_rows(ctx, step, "probe", self.rows(ctx.model))

    @torch.no_grad()
    def rows(self, model) -> list[dict]:
        g = torch.Generator().manual_seed(SEED)
        rows = []
        for n in self.sizes:
            per_layer: dict[int, list[float]] = {}
            for e in range(min(self.examples, len(self.x))):
                outs: dict[int, list[torch.Tensor]] = {}
                with batch_statistics(model):
                    for idx in random_batches(len(self.x), e, n, self.k, g):
                        with self.inputs:
                            model(self.x[idx.to(self.x.device)])
                        for i, norm in enumerate(self.inputs.norms):
                            z = normalized_output(norm, self.inputs.inputs[i], batch=True)
                            if z is not None:
                                outs.setdefault(i, []).append(z[0])
                for i, o in outs.items():
                    per_layer.setdefault(i, []).append(spread(torch.stack(o)))
            rows += [{"metric": "snd", "value": sum(v) / len(v), "layer": str(i + 1), "bn_mode": f"batch@{n}"}
                     for i, v in sorted(per_layer.items())]
        return rows
