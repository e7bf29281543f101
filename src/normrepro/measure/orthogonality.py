"""How orthogonal a network's filters are: mean |W W^T - I| per layer ([OWN]'s property; ``probes.orthogonality``).

For each reparameterizable layer (``norms.weight_param.reparameterized_layers``: every conv/linear but the
classifier) the *effective* weight W (out x fan_in; what the layer multiplies its input by, after WN or
OWN) is cut into the same groups of rows as OWN uses (``own_group_size`` capped at fan_in - 1), and for each
group the g x g matrix G = W_g W_g^T is compared with I:

- ``orth_err``: mean over the entries of |G / s^2 - I|, where s is an OWN layer's fixed scale (1 for every
  other layer). For OWN this checks the construction (0 up to eps and round-off). For plain and WN layers
  it mixes two things: row norms far from 1 (a plain filter's norm is whatever training made it) and
  correlations between filters.
- ``orth_err_rownorm``: the same after scaling every row of W to unit norm, so the diagonal is 0 and the
  value is the mean |cosine| between two filters of a group times (g - 1) / g: filter redundancy alone,
  comparable between plain, WN and OWN (WN's rows are g * v / ||v||, so it gives WN's direction).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from normrepro.measure.base import Context, Instrument, write_rows
from normrepro.norms.own import effective_group_size, row_groups
from normrepro.norms.weight_param import own_parametrization as _own
from normrepro.norms.weight_param import reparameterized_layers


def _gram_error(w: torch.Tensor, size: int) -> float:
    """Mean over all entries of all groups of |W_g W_g^T - I| (float64)."""
    total, count = 0.0, 0
    for start, stop in row_groups(w.shape[0], size):
        g = w[start:stop]
        err = (g @ g.T - torch.eye(stop - start, dtype=w.dtype, device=w.device)).abs()
        total += err.sum().item()
        count += err.numel()
    return total / count


@torch.no_grad()
def orthogonality_rows(model: nn.Module, group_size: int, last: bool = False) -> list[dict]:
    """Rows ``{metric, value, layer}``: ``orth_err`` and ``orth_err_rownorm`` per layer (module name)."""
    rows = []
    with parametrize.cached():
        for name, m in reparameterized_layers(model, last):
            w = m.weight.detach().double()
            w = w.reshape(w.shape[0], -1)
            own = _own(m)
            size = own.group_size if own is not None else effective_group_size(group_size, w.shape[1])
            scale = own.scale if own is not None else 1.0
            unit = w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)
            rows += [{"metric": "orth_err", "value": _gram_error(w / scale, size), "layer": name},
                     {"metric": "orth_err_rownorm", "value": _gram_error(unit, size), "layer": name}]
    return rows


class Orthogonality(Instrument):
    """Rows ``orth_err`` / ``orth_err_rownorm`` of split ``probe`` at every evaluation."""

    name = "orthogonality"

    def __init__(self, group_size: int, last: bool):
        self.group_size, self.last = group_size, last

    @classmethod
    def build(cls, cfg, model, splits, batches):
        return cls(cfg.model.own_group_size, cfg.model.weight_param_last) if cfg.probes.orthogonality else None

    def on_evaluate(self, ctx: Context, step: int) -> None:
        write_rows(ctx, step, "probe", orthogonality_rows(ctx.model, self.group_size, self.last))
