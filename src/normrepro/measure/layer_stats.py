"""Signal propagation per hidden layer (``probes.layer_stats``): how the forward signal and the
back-propagated gradient scale with depth, at step 0 and at every evaluation.

Glorot & Bengio 2010 (Sec. 4.2, eqs. 2-16) follow, layer by layer, the variance of the activations and of the
back-propagated gradient dC/ds_l (s_l = W_l h_{l-1} + b_l, the nonlinearity's input): in the linear regime,
Var[s_{l+1}] = n_l Var[W] Var[h_l], so n Var[W] = 1 keeps the forward variance constant and n_{l+1} Var[W] = 1
the backward one. He et al. 2015 (Sec. 2.2, eqs. 7-10 and 13-14) redo it for ReLU, where half the signal is
zeroed: Var[y_L] = Var[y_1] prod_l (n_l Var[w_l] / 2), so n Var[w] = 2. Both predict the ratio of the last to
the first layer's standard deviation: 1 at the right scale, exponential in depth at a wrong one.

Rows per hidden layer (layer = "1".. from the input), on the fixed probe examples in one batch:
- ``layer_preact_std``: std over all (example, unit) entries of s_l (He's y_l);
- ``layer_act_std``: the same of the nonlinearity's output h_l (Glorot's "activation values");
- ``layer_grad_std``: the same of dC/ds_l with C the *summed* cross-entropy, so every entry is one example's
  back-propagated gradient (a mean over the batch would divide them all by its size).
Std over all entries (not per unit, as ``preact_std`` of the activation probes) is the quantity of the
papers' variance recursions. BN, where present, uses the probe batch's statistics; the model is unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from normrepro.measure.base import Context, Instrument, probe_examples, write_rows
from normrepro.models.common import NormAct
from normrepro.norms.modes import batch_statistics


def layer_stats(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[dict]:
    """Rows ``{metric, value, layer}`` for every NormAct block of ``model`` (its hidden layers)."""
    blocks = [m for m in model.modules() if isinstance(m, NormAct)]
    pre: dict[int, torch.Tensor] = {}
    post: dict[int, torch.Tensor] = {}

    def hook(i):
        def capture(_module, inputs, output):
            pre[i], post[i] = inputs[0], output
        return capture

    handles = [b.act.register_forward_hook(hook(i)) for i, b in enumerate(blocks)]
    try:  # dropout off; BN's statistics come from the probe batch, its running averages untouched
        with torch.enable_grad(), batch_statistics(model):
            loss = F.cross_entropy(model(x), y, reduction="sum")
            inputs = [pre[i] for i in range(len(blocks))]
            grads = torch.autograd.grad(loss, inputs, allow_unused=True) if inputs else []
    finally:
        for h in handles:
            h.remove()
    rows = []
    for i, g in enumerate(grads):
        layer = str(i + 1)
        rows += [{"metric": "layer_preact_std", "value": pre[i].detach().std().item(), "layer": layer},
                 {"metric": "layer_act_std", "value": post[i].detach().std().item(), "layer": layer},
                 {"metric": "layer_grad_std", "value": float("nan") if g is None else g.std().item(),
                  "layer": layer}]
    return rows


class LayerStats(Instrument):
    """Rows of split ``probe`` at every evaluation (step 0 included), on the first ``probes.examples``
    validation examples."""

    name = "layer_stats"

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    @classmethod
    def build(cls, cfg, model, splits, batches):
        return cls(*probe_examples(cfg, splits)) if cfg.probes.layer_stats else None

    def on_evaluate(self, ctx: Context, step: int) -> None:
        write_rows(ctx, step, "probe", layer_stats(ctx.model, self.x, self.y))
