"""Probability that a freshly initialized network is dead ("born dead"), by Monte Carlo over inits.

[S1] (ReLU): if every unit of one layer outputs 0, all later layers are dead too; the chance that a
layer of M units dies falls as M grows, and, it says, the chance that some layer dies falls as the number
of layers N grows. Lu et al. 2019 ("Dying ReLU and Initialization", arXiv 1903.06733, Theorem 3) prove the
opposite for depth: with weights and biases drawn from symmetric distributions, a ReLU net of fixed width
is dead at init (a constant function) with probability -> 1 as the depth grows.

A net is *born dead* on a set of inputs X (here: held-out examples) when some hidden layer outputs exactly 0
for every unit and every x in X, or when its output does not depend on x at all (constant over X). Both are
tested; the first implies the second through a ReLU chain, the second also catches a constant produced by
the biases.

Known answer (tests/test_activations_exp.py): width-1 ReLU nets with zero biases and symmetric weights. With
inputs of one sign, each layer's single unit is alive on X exactly when its weight has the sign that makes
w * h > 0, probability 1/2, independently per layer, so P(alive) = 2^-L for L hidden layers; with inputs of
both signs the first layer is always alive on some x, so P(alive) = 2^-(L-1).

For every depth in ``probes.dead_init_depths`` and width in ``probes.dead_init_widths``,
``probes.dead_init_nets`` MLPs of that many hidden layers of that many units are built with the run's
activation, norm and ``model.init`` (the trained model's code path) from their own random stream (seeding
stream ``montecarlo``, one per cell), leaving the run's own streams alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from omegaconf import OmegaConf
from torch import nn

from normrepro.measure.base import Context, Instrument, probe_examples
from normrepro.models import build_model
from normrepro.models.common import NormAct, init_weights
from normrepro.norms.modes import batch_statistics
from normrepro.seeding import derive_seed


@torch.no_grad()
def born_dead(model: nn.Module, x: torch.Tensor, rtol: float = 1e-6) -> bool:
    """Whether ``model`` is dead on inputs ``x``: a hidden layer all zero on every input, or an output that is
    the same for every input (to ``rtol`` of the output's largest magnitude; an all-zero output is dead)."""
    blocks = [m for m in model.modules() if isinstance(m, NormAct)]
    layer_all_zero: list[bool] = []

    def hook(_module, _inputs, output):
        layer_all_zero.append(bool((output == 0).all()))

    handles = [b.act.register_forward_hook(hook) for b in blocks]
    try:
        with batch_statistics(model):
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    if any(layer_all_zero):
        return True
    # relative to the output's own size, with no absolute floor: a deep leaky net's output can be 1e-17 and
    # still vary from input to input (alive, vanishing signal); only an output equal for all inputs is dead
    spread = (out - out[:1]).abs().max()
    return bool(spread <= rtol * out.abs().max())


def count_born_dead(make_net: Callable[[], nn.Module], x: torch.Tensor, n_nets: int, seed: int) -> int:
    """How many of ``n_nets`` nets drawn by ``make_net()`` are born dead on ``x``. The global torch generator
    is seeded with ``seed`` inside a forked state, so the caller's random stream is untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return sum(born_dead(make_net(), x) for _ in range(n_nets))


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion k / n (Wilson 1927); good down to k = 0 or n."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@torch.no_grad()
def reinit(net: nn.Module, scheme: str, std: float) -> nn.Module:
    """Draw ``net``'s parameters afresh, as ``build_model`` does: each module's default init, then ``scheme``."""
    for m in net.modules():
        if m is not net and hasattr(m, "reset_parameters"):
            m.reset_parameters()
    init_weights(net, scheme, std)
    return net


def cell_seed(seed: int, depth: int, width: int) -> int:
    """The random stream of one (depth, width) cell: its nets do not depend on which other cells run."""
    return (derive_seed(seed, "montecarlo") + 1_000_003 * depth + 7_919 * width) % 2**31


class DeadAtInit(Instrument):
    """Rows ``p_dead_init`` and its Wilson bounds ``p_dead_init_lo`` / ``_hi`` (split ``probe``) at step 0, one
    per cell of ``probes.dead_init_depths`` x ``probes.dead_init_widths``; a row's ``unit`` is the cell's
    depth (hidden layers) and its ``layer`` the cell's width (units per hidden layer), as a string."""

    name = "dead_at_init"

    def __init__(self, make_net: Callable[[int, int], nn.Module], x: torch.Tensor, n_nets: int, seed: int,
                 depths: list[int], widths: list[int]):
        self.make_net, self.x, self.n_nets, self.seed = make_net, x, n_nets, seed
        self.depths, self.widths = list(depths), list(widths)

    @classmethod
    def build(cls, cfg, model, splits, batches):
        p = cfg.probes
        if not p.dead_init_nets:
            return None
        depths, widths = list(p.dead_init_depths), list(p.dead_init_widths)
        if not depths or not widths or min(depths + widths) < 1:
            raise ValueError("probes.dead_init_nets needs probes.dead_init_depths and dead_init_widths (>= 1 each)")
        device = next(model.parameters()).device

        built: dict[tuple[int, int], nn.Module] = {}
        # re-initializing one net in place draws from the same distribution as building a new one (torch's
        # reset_parameters, then model.init) at a tenth of the cost; rescaled / reparameterized nets are rebuilt
        reuse = cfg.model.weight_param == "none" and cfg.model.rescale_k == 1.0

        def make_net(depth: int, width: int) -> nn.Module:
            # the run's activation, placement, bias and init (model.init), norm.kind: the trained model's path
            if reuse and (depth, width) in built:
                return reinit(built[(depth, width)], cfg.model.init, cfg.model.init_std)
            net_cfg = OmegaConf.merge(cfg.model, {"arch": "mlp", "widths": [width] * depth})
            built[(depth, width)] = build_model(net_cfg, cfg.norm, splits.input_shape, splits.num_classes).to(device)
            return built[(depth, width)]

        x = probe_examples(cfg, splits)[0].to(device)
        return cls(make_net, x, p.dead_init_nets, cfg.seed, depths, widths)

    def at_start(self, ctx: Context, step: int) -> None:
        for width in self.widths:
            for depth in self.depths:
                k = count_born_dead(lambda d=depth, w=width: self.make_net(d, w), self.x, self.n_nets,
                                    cell_seed(self.seed, depth, width))
                lo, hi = wilson_interval(k, self.n_nets)
                for metric, value in (("p_dead_init", k / self.n_nets), ("p_dead_init_lo", lo),
                                      ("p_dead_init_hi", hi)):
                    ctx.write(step, "probe", metric, value, layer=str(width), unit=depth)
