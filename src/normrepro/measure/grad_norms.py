"""Per-layer weight-gradient L2 norms at each log step (``probes.grad_norms``), before clipping."""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize

from normrepro.measure.base import Context, Instrument


def grad_norms(model: nn.Module) -> dict[str, float]:
    """L2 norm of each Linear/Conv weight gradient (keyed by module name) and of all gradients ("").

    A reparameterized weight (WN, OWN) is computed, not a parameter: its layer reports the gradient norm of
    the parameters it is computed from (OWN's V; WN's g and v together), without recomputing it."""
    out, total = {}, 0.0
    for name, m in model.named_modules():
        if not isinstance(m, (nn.Linear, nn.Conv2d)):
            continue
        if parametrize.is_parametrized(m, "weight"):
            grads = [p.grad for p in m.parametrizations["weight"].parameters() if p.grad is not None]
            if grads:
                out[name] = sum(g.pow(2).sum() for g in grads).sqrt().item()
        elif m.weight.grad is not None:
            out[name] = m.weight.grad.norm().item()
    for p in model.parameters():
        if p.grad is not None:
            total += p.grad.pow(2).sum().item()
    out[""] = total ** 0.5
    return out


class GradNorms(Instrument):
    """Rows ``grad_norm`` of split ``train`` (layer = module name; no layer = all parameters)."""

    name = "grad_norms"

    def __init__(self):
        self.norms: dict[str, float] = {}

    @classmethod
    def build(cls, cfg, model, splits, batches):
        return cls() if cfg.probes.grad_norms else None

    def after_backward(self, ctx: Context, step: int, log_now: bool) -> None:
        if log_now:
            self.norms = grad_norms(ctx.model)

    def on_log(self, ctx: Context, step: int) -> None:
        for layer, value in self.norms.items():
            ctx.write(step, "train", "grad_norm", value, layer=layer or None)
        self.norms = {}
