"""Measurements of what happens inside the network, logged through the metrics schema.

- [BN] Fig. 1(b,c): the 15th/50th/85th percentiles of a last-hidden-layer unit's sigmoid *input* over training.
- Seed 000: with BN at init, ~68% of sigmoid outputs fall in [0.27, 0.73] and ~95% in [0.12, 0.88]
  (sigmoid(+-1) and sigmoid(+-2) for N(0, 1) inputs); units stay out of saturation.
- Seed 000's central-limit argument: skewness / excess kurtosis of pre- vs post-activation values.
- ReLU activity (fraction of non-zero outputs) and per-layer weight-gradient norms.
Probes run on a fixed set of validation examples with BN using those examples' batch statistics (not the
running averages, which at step 0 are still their initial values), dropout off, and no state changed.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.nn.utils import parametrize

from normrepro.models.common import NormAct
from normrepro.norms import BATCH_NORM_TYPES


@contextlib.contextmanager
def batch_stats_mode(model: nn.Module):
    """Eval mode (dropout off) except BN layers, which normalize with the batch's own statistics while their
    running averages are left untouched (momentum 0 keeps them as they were)."""
    was_training = model.training
    saved = []
    model.eval()
    for m in model.modules():
        if isinstance(m, BATCH_NORM_TYPES):
            saved.append((m, m.momentum, m.num_batches_tracked.clone()))
            m.train()
            m.momentum = 0.0
    try:
        yield model
    finally:
        for m, momentum, tracked in saved:
            m.momentum = momentum
            m.num_batches_tracked.copy_(tracked)
        model.train(was_training)


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
        captured: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        handles = [b.act.register_forward_hook(self._hook(i, captured)) for i, b in enumerate(self.blocks)]
        try:
            with batch_stats_mode(model):
                model(x)
        finally:
            for h in handles:
                h.remove()
        rows = []
        for i, block in enumerate(self.blocks):
            pre, post = captured[i]
            rows += self._layer_rows(str(i + 1), block.act, pre, post, last=(i == len(self.blocks) - 1))
        return rows

    def _hook(self, i: int, captured: dict):
        def hook(_module, inputs, output):
            captured[i] = (_per_unit(inputs[0]), _per_unit(output))
        return hook

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


def hidden_grad_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[tuple[int, float]]:
    """[C] Fig. 1a: ||dL/dh_t|| (Frobenius norm over the batch) for t = 1..T, for a recurrent model
    (``models/rnn.py``) on one batch, BN with that batch's per-step statistics. Computed on a float64 copy
    of the model: a gradient that shrinks by a constant factor per step underflows float32 (to exactly 0)
    within a few hundred of [C]'s 784 steps. The model itself is left untouched."""
    import copy

    import torch.nn.functional as F

    probe = copy.deepcopy(model).double()
    probe.keep_hidden = True
    with batch_stats_mode(probe):
        loss = F.cross_entropy(probe(x.double() if x.is_floating_point() else x), y)
        grads = torch.autograd.grad(loss, probe.hiddens)
    return [(t + 1, g.norm().item()) for t, g in enumerate(grads)]


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


class StuckUnitTracker:
    """Seed 000's mechanism for why BN nets need thorough shuffling: when an example always shares its
    mini-batch with the same partners, the batch statistics it sees never change, so some of its units can
    sit at zero after BN+ReLU every time, and no gradient reaches them. Over the last ``epochs`` epochs of
    training this records, for every (training example, ReLU unit) pair, whether the unit was zero each time
    the example was seen. Counted with forward hooks during the real training steps (no extra passes)."""

    def __init__(self, model: nn.Module, n_examples: int, batches, total_steps: int, epochs: int):
        self.blocks = [m for m in model.modules() if isinstance(m, NormAct) and isinstance(m.act, nn.ReLU)]
        self.start = max(0, total_steps - epochs * batches.steps_per_epoch)
        self.n = n_examples
        self.seen = torch.zeros(n_examples, dtype=torch.int32)
        self.zero_counts: list[torch.Tensor | None] = [None] * len(self.blocks)
        self.idx = None
        for i, block in enumerate(self.blocks):
            block.register_forward_hook(self._hook(i))

    def before_step(self, step: int, idx: torch.Tensor) -> None:
        self.idx = idx.cpu() if step >= self.start else None
        if self.idx is not None:
            self.seen.index_add_(0, self.idx, torch.ones_like(self.idx, dtype=torch.int32))

    def _hook(self, i: int):
        def hook(module, _inputs, output):
            if self.idx is None or not module.training:
                return
            zero = (output.detach() <= 0).flatten(2).all(-1) if output.dim() == 4 else output.detach() <= 0
            if self.zero_counts[i] is None:
                self.zero_counts[i] = torch.zeros(self.n, zero.shape[1], dtype=torch.int32)
            self.zero_counts[i].index_add_(0, self.idx, zero.cpu().int())
        return hook

    def state(self) -> dict:
        return {"seen": self.seen.clone(), "zero_counts": [c.clone() if c is not None else None
                                                          for c in self.zero_counts]}

    def load_state(self, state: dict) -> None:
        self.seen, self.zero_counts = state["seen"], state["zero_counts"]

    def result(self) -> dict[str, float]:
        seen = self.seen > 0
        counts = [c[seen] for c in self.zero_counts if c is not None]
        if not counts:
            return {}
        times = self.seen[seen].unsqueeze(1)
        stuck = torch.cat([(c == times) for c in counts], 1).float().mean().item()
        zero = torch.cat([c / times for c in counts], 1).float().mean().item()
        return {"frac_stuck_zero": stuck, "frac_zero": zero}
