"""Activation probes at every evaluation (``probes.enabled``): what the nonlinearities see.

- [BN] Fig. 1(b,c): the 15th/50th/85th percentiles of a last-hidden-layer unit's sigmoid *input* over training.
- [S0]: with BN at init, ~68% of sigmoid outputs fall in [0.27, 0.73] and ~95% in [0.12, 0.88]
  (sigmoid(+-1) and sigmoid(+-2) for N(0, 1) inputs); units stay out of saturation.
- [S0]'s central-limit argument: skewness / excess kurtosis of pre- vs post-activation values.
- ReLU activity (fraction of non-zero outputs), per layer and optionally per unit (``probes.unit_activity``).
Probes run on a fixed set of validation examples with BN using those examples' batch statistics (not the
running averages, which at step 0 are still their initial values), dropout off, and no state changed.
"""

from __future__ import annotations

import torch
from torch import nn

from normrepro.measure.base import Context, Instrument, probe_examples, write_rows
from normrepro.models.common import NormAct
from normrepro.norms.modes import batch_statistics


def _per_unit(t: torch.Tensor) -> torch.Tensor:
    """(N, C) or (N, C, H, W) -> (samples, C): every example and position is a sample of its channel."""
    if t.dim() == 4:
        return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])
    return t.reshape(t.shape[0], -1)


def abs_moments(samples: torch.Tensor) -> tuple[float, float]:
    """Mean over units of |skewness| and |excess kurtosis|; constant units (e.g. dead ReLUs) are left out."""
    x = samples.double()
    mu, sd = x.mean(0), x.std(0, unbiased=False)
    live = sd > 1e-12
    if not live.any():
        return float("nan"), float("nan")
    z = (x[:, live] - mu[live]) / sd[live]
    skew = z.pow(3).mean(0).abs().mean().item()
    kurt = (z.pow(4).mean(0) - 3.0).abs().mean().item()
    return skew, kurt


class ActivationProbe:
    """Hooks every NormAct's nonlinearity to capture its input (pre-activation) and output."""

    def __init__(self, model: nn.Module, units: list[int], max_samples: int = 20000, per_unit: bool = False):
        self.blocks = [m for m in model.modules() if isinstance(m, NormAct)]
        self.units = list(units)
        self.max_samples = max_samples  # per layer, so conv layers cost no more than MLP layers
        self.per_unit = per_unit  # also one frac_active row per ReLU unit

    @torch.no_grad()
    def measure(self, model: nn.Module, x: torch.Tensor) -> list[dict]:
        """Returns rows ``{metric, value, layer[, unit]}``; layers are numbered 1.. from the input."""
        rows = []
        for i, (block, (pre, post)) in enumerate(zip(self.blocks, nonlinearity_io(model, self.blocks, x))):
            rows += self._layer_rows(str(i + 1), block.act, pre, post, last=(i == len(self.blocks) - 1))
        return rows

    def _layer_rows(self, layer: str, act: nn.Module, pre: torch.Tensor, post: torch.Tensor, last: bool):
        if pre.shape[0] > self.max_samples:  # a fixed stride keeps it deterministic
            stride = pre.shape[0] // self.max_samples + 1
            pre, post = pre[::stride], post[::stride]
        rows = [{"metric": "preact_mean", "value": pre.mean(0).mean().item(), "layer": layer},
                {"metric": "preact_std", "value": pre.std(0).mean().item(), "layer": layer}]
        for prefix, t in (("preact", pre), ("postact", post)):
            skew, kurt = abs_moments(t)
            rows += [{"metric": f"{prefix}_skew", "value": skew, "layer": layer},
                     {"metric": f"{prefix}_kurt", "value": kurt, "layer": layer}]
        if isinstance(act, nn.Sigmoid):
            rows += [{"metric": "frac_mid68", "value": _frac_in(post, 0.27, 0.73), "layer": layer},
                     {"metric": "frac_mid95", "value": _frac_in(post, 0.12, 0.88), "layer": layer}]
        if isinstance(act, nn.ReLU):
            active = (post > 0).float().mean(0)
            rows.append({"metric": "frac_active", "value": active.mean().item(), "layer": layer})
            if self.per_unit:
                rows += [{"metric": "frac_active", "value": v, "layer": layer, "unit": u}
                         for u, v in enumerate(active.tolist())]
        if last:
            qs = torch.tensor([0.15, 0.50, 0.85], dtype=pre.dtype, device=pre.device)
            for unit in self.units:
                if unit >= pre.shape[1]:
                    continue
                p15, p50, p85 = torch.quantile(pre[:, unit], qs).tolist()
                rows += [{"metric": "preact_p15", "value": p15, "layer": layer, "unit": unit},
                         {"metric": "preact_p50", "value": p50, "layer": layer, "unit": unit},
                         {"metric": "preact_p85", "value": p85, "layer": layer, "unit": unit}]
        return rows


def _frac_in(t: torch.Tensor, lo: float, hi: float) -> float:
    return ((t >= lo) & (t <= hi)).float().mean().item()




class ActivationProbes(Instrument):
    """Rows of split ``probe`` at every evaluation, on the first ``probes.examples`` validation examples."""

    name = "activations"

    def __init__(self, probe: ActivationProbe, x: torch.Tensor):
        self.probe, self.x = probe, x

    @classmethod
    def build(cls, cfg, model, splits, batches):
        if not cfg.probes.enabled:
            return None
        probe = ActivationProbe(model, list(cfg.probes.units), per_unit=cfg.probes.unit_activity)
        return cls(probe, probe_examples(cfg, splits)[0])

    def on_evaluate(self, ctx: Context, step: int) -> None:
        write_rows(ctx, step, "probe", self.probe.measure(ctx.model, self.x))


@torch.no_grad()
def nonlinearity_io(model: nn.Module, blocks: list[NormAct], x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per block, the (samples, units) input and output of its nonlinearity when ``x`` goes through ``model``
    with BN on ``x``'s own batch statistics (running averages untouched)."""
    captured: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def hook(i):
        def fn(_module, inputs, output):
            captured[i] = (_per_unit(inputs[0]), _per_unit(output))
        return fn

    handles = [b.act.register_forward_hook(hook(i)) for i, b in enumerate(blocks)]
    try:
        with batch_statistics(model):
            model(x)
    finally:
        for h in handles:
            h.remove()
    return [captured[i] for i in range(len(blocks))]
