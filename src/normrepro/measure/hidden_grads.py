"""[C] Fig. 1a's gradient flow through time at step 0 (``probes.hidden_grad_norms``, recurrent models)."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from normrepro.measure.base import Context, Instrument, probe_examples
from normrepro.norms.modes import batch_statistics


def hidden_grad_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[tuple[int, float]]:
    """[C] Fig. 1a: ||dL/dh_t|| (Frobenius norm over the batch) for t = 1..T, for a recurrent model
    (``models/rnn.py``) on one batch, BN with that batch's per-step statistics. Computed on a float64 copy
    of the model: a gradient that shrinks by a constant factor per step underflows float32 (to exactly 0)
    within a few hundred of [C]'s 784 steps. The model itself is left untouched."""
    probe = copy.deepcopy(model).double()
    probe.keep_hidden = True
    with batch_statistics(probe):
        loss = F.cross_entropy(probe(x.double() if x.is_floating_point() else x), y)
        grads = torch.autograd.grad(loss, probe.hiddens)
    return [(t + 1, g.norm().item()) for t, g in enumerate(grads)]


class HiddenGradNorms(Instrument):
    """Rows ``hidden_grad_norm`` (unit = t) of split ``probe`` at step 0, on the first ``probes.examples``
    validation sequences."""

    name = "hidden_grad_norms"

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    @classmethod
    def build(cls, cfg, model, splits, batches):
        return cls(*probe_examples(cfg, splits)) if cfg.probes.hidden_grad_norms else None

    def at_start(self, ctx: Context, step: int) -> None:
        for t, value in hidden_grad_norms(ctx.model, self.x, self.y):
            ctx.write(0, "probe", "hidden_grad_norm", value, unit=t)
