"""Numerical rank of every Linear weight (``probes.weight_rank``): does training break the symmetry of the
initialization?

With every weight of a layer equal (a constant init), all units of a hidden layer compute the same value and
receive the same gradient, so they stay equal: each weight matrix keeps identical rows (and, past the first
layer, identical columns) and its rank stays 1 (Goodfellow et al. 2016, Sec. 8.4; [S1]). A random init gives a
full-rank matrix from the start. Rows per Linear layer (layer = module name, e.g. ``layers.0.linear``, ``head``):

- ``weight_rank``: the number of singular values above ``RTOL`` times the largest (float64 SVD of the weight);
- ``weight_sv_ratio``: sigma_2 / sigma_1, 0 for an exactly rank-1 matrix; how far the symmetry is broken.
"""

from __future__ import annotations

import torch
from torch import nn

from normrepro.measure.base import Context, Instrument, write_rows

# Relative threshold of the numerical rank. float32 weights that should be equal differ by round-off
# (~1e-7 relative) at most, far below it; the smallest singular value of a random Gaussian n x m matrix
# (m >= n) is about (sqrt(m) - sqrt(n)) / (sqrt(m) + sqrt(n)) of the largest, far above it when m > n.
RTOL = 1e-4


def singular_values(w: torch.Tensor) -> torch.Tensor:
    return torch.linalg.svdvals(w.detach().reshape(w.shape[0], -1).double())


def numerical_rank(w: torch.Tensor, rtol: float = RTOL) -> int:
    s = singular_values(w)
    return int((s > rtol * s[0]).sum().item()) if s[0] > 0 else 0


def weight_rank_rows(model: nn.Module, rtol: float = RTOL) -> list[dict]:
    rows = []
    for name, m in model.named_modules():
        if not isinstance(m, nn.Linear):
            continue
        s = singular_values(m.weight)
        rank = int((s > rtol * s[0]).sum().item()) if s[0] > 0 else 0
        ratio = (s[1] / s[0]).item() if len(s) > 1 and s[0] > 0 else 0.0
        rows += [{"metric": "weight_rank", "value": float(rank), "layer": name},
                 {"metric": "weight_sv_ratio", "value": ratio, "layer": name}]
    return rows


class WeightRank(Instrument):
    """Rows ``weight_rank`` / ``weight_sv_ratio`` of split ``probe`` at every evaluation."""

    name = "weight_rank"

    @classmethod
    def build(cls, cfg, model, splits, batches):
        return cls() if cfg.probes.weight_rank else None

    def on_evaluate(self, ctx: Context, step: int) -> None:
        write_rows(ctx, step, "probe", weight_rank_rows(ctx.model))
