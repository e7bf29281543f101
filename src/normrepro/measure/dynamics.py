"""Training-dynamics measurements taken at log steps, around the optimizer step (``probes.dynamics``).

- ``param_norm`` / ``grad_rel`` / ``update_rel``: per parameter tensor, ||theta||, ||grad|| / ||theta|| and
  ||delta theta|| / ||theta|| ([S0]'s example of two parameterizations of one function: the relative
  update of each layer is what differs; [BN] Sec. 3.3: larger weights get smaller gradients).
- ``gamma_cancel``: [S0] on BN's gamma: dL/dgamma_j = sum_i dL/dy_ij * xhat_ij sums per-example
  contributions of both signs that can cancel inside a mini-batch. Per channel, |sum_i c_ij| / sum_i |c_ij|
  (1 = all agree, ~1/sqrt(m) for random signs), averaged over channels.
"""

from __future__ import annotations

import torch
from torch import nn

from normrepro.measure.base import Context, Instrument, write_rows
from normrepro.norms import BATCH_NORM_TYPES

_TRACKED = (nn.Linear, nn.Conv2d, *BATCH_NORM_TYPES)


class TrainingDynamics:
    def __init__(self, model: nn.Module):
        self.params = {f"{mod_name}.{p_name}": p
                       for mod_name, m in model.named_modules() if isinstance(m, _TRACKED)
                       for p_name, p in m.named_parameters(recurse=False)}
        self.bns = [(name, m) for name, m in model.named_modules() if isinstance(m, BATCH_NORM_TYPES)
                    and getattr(m, "weight", None) is not None]
        self.armed = False
        self._captured: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._before: dict[str, torch.Tensor] = {}
        for name, m in self.bns:
            m.register_forward_hook(self._forward_hook(name))

    def _forward_hook(self, name: str):
        def hook(module, _inputs, output):
            if not (self.armed and module.training and output.requires_grad):
                return
            shape = (1, -1) + (1,) * (output.dim() - 2)
            x_hat = (output.detach() - module.bias.detach().view(shape)) / module.weight.detach().view(shape)

            def grad_hook(grad):
                self._captured[name] = (grad.detach(), x_hat)
            output.register_hook(grad_hook)
        return hook

    def arm(self) -> None:
        """Call before the forward pass of a step that will be logged."""
        self.armed, self._captured = True, {}

    @torch.no_grad()
    def before_step(self) -> list[dict]:
        """After backward, before optimizer.step: gradient statistics; snapshots the parameters."""
        self.armed = False
        rows = []
        for name, p in self.params.items():
            norm = p.norm().item()
            rows.append({"metric": "param_norm", "value": norm, "layer": name})
            if p.grad is not None:
                rows.append({"metric": "grad_rel", "value": p.grad.norm().item() / max(norm, 1e-12), "layer": name})
            self._before[name] = p.detach().clone()
        for name, (grad, x_hat) in self._captured.items():
            contrib = (grad * x_hat).flatten(2).sum(-1) if grad.dim() > 2 else grad * x_hat  # (N, C)
            ratio = contrib.sum(0).abs() / contrib.abs().sum(0).clamp_min(1e-30)
            rows.append({"metric": "gamma_cancel", "value": ratio.mean().item(), "layer": name})
        return rows

    @torch.no_grad()
    def after_step(self) -> list[dict]:
        rows = [{"metric": "update_rel", "value": ((p.detach() - self._before[name]).norm()
                                                   / self._before[name].norm().clamp_min(1e-12)).item(),
                 "layer": name} for name, p in self.params.items()]
        self._before = {}
        return rows


class Dynamics(Instrument):
    """Rows of split ``train`` at each log step: gradient statistics after clipping, relative updates."""

    name = "dynamics"

    def __init__(self, dynamics: TrainingDynamics):
        self.dynamics, self.rows = dynamics, []

    @classmethod
    def build(cls, cfg, model, splits, batches):
        return cls(TrainingDynamics(model)) if cfg.probes.dynamics else None

    def before_forward(self, ctx: Context, step: int, idx, log_now: bool) -> None:
        if log_now:
            self.dynamics.arm()

    def before_update(self, ctx: Context, step: int, log_now: bool) -> None:
        self.rows = self.dynamics.before_step() if log_now else []

    def after_update(self, ctx: Context, step: int, log_now: bool) -> None:
        if self.rows:
            self.rows += self.dynamics.after_step()

    def on_log(self, ctx: Context, step: int) -> None:
        write_rows(ctx, step, "train", self.rows)
        self.rows = []
