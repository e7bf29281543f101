"""Dead units and mean activations at every evaluation (``probes.dead_units``), on held-out examples.

[S1] (activation functions, ReLU): a ReLU unit whose input is negative outputs 0 and passes no gradient;
it is *truly* dead when that holds for every input (it can never learn again), *falsely* dead when it is 0
for some inputs only, and most zeros in a trained net are of the second kind. LeakyReLU / PReLU / ELU keep a
gradient for x < 0 (Maas et al. 2013; He et al. 2015; Clevert et al. 2016), so a unit pushed below zero can
come back. The seed also asks for zero-centred outputs (a layer whose outputs all have one sign makes the
next layer's weight gradients share a sign: dL/dw_ij = delta_i * h_j).

Rows per hidden layer (layers numbered 1.. from the input), on the first ``probes.examples`` validation
examples, dropout off and BN (if any) using those examples' batch statistics, as in ``activations.py``:

- ``frac_dead``: share of the layer's units whose nonlinearity input is <= 0 on *every* example. For ReLU
  these units output 0 everywhere (dead); for the leaky variants the same test says which units sit wholly
  in the negative regime, where they still learn through the slope, so the two are comparable.
- ``postact_mean``: mean over examples and units of the nonlinearity's output (0 for zero-centred outputs).
"""

from __future__ import annotations

import torch
from torch import nn

from normrepro.measure.activations import nonlinearity_io
from normrepro.measure.base import Context, Instrument, probe_examples, write_rows
from normrepro.models.common import NormAct


def dead_fraction(pre: torch.Tensor) -> float:
    """(samples, units) nonlinearity inputs -> share of units with input <= 0 on every sample."""
    return (pre <= 0).all(0).float().mean().item()


@torch.no_grad()
def dead_unit_rows(model: nn.Module, x: torch.Tensor) -> list[dict]:
    """``frac_dead`` and ``postact_mean`` rows for every NormAct of ``model`` on inputs ``x``."""
    blocks = [m for m in model.modules() if isinstance(m, NormAct)]
    rows = []
    for i, (pre, post) in enumerate(nonlinearity_io(model, blocks, x)):
        rows += [{"metric": "frac_dead", "value": dead_fraction(pre), "layer": str(i + 1)},
                 {"metric": "postact_mean", "value": post.double().mean().item(), "layer": str(i + 1)}]
    return rows


class DeadUnits(Instrument):
    """Rows of split ``probe`` at every evaluation (step 0 included)."""

    name = "dead_units"

    def __init__(self, x: torch.Tensor):
        self.x = x

    @classmethod
    def build(cls, cfg, model, splits, batches):
        if not cfg.probes.dead_units:
            return None
        return cls(probe_examples(cfg, splits)[0])

    def on_evaluate(self, ctx: Context, step: int) -> None:
        write_rows(ctx, step, "probe", dead_unit_rows(ctx.model, self.x))
