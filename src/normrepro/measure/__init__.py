"""Instruments: everything a run measures besides its loss and evaluation, one file each, built from the
config by :func:`build_instruments` and called by the training loop at its hook points (``base.py``).

Adding an instrument: write ``measure/<name>.py`` with an ``Instrument`` subclass (its ``build`` reads the
config and returns None when there is nothing to measure) and add it to ``INSTRUMENTS`` below; its rows use
the metric names of ``store.METRICS`` (add new names there).
"""

from __future__ import annotations

from normrepro.measure.activations import ActivationProbes
from normrepro.measure.base import HOOKS, Context, Instrument, overrides
from normrepro.measure.bn_eval_modes import BNEvalModes
from normrepro.measure.bn_test_statistics import BNTestStatistics
from normrepro.measure.dead_at_init import DeadAtInit
from normrepro.measure.dead_units import DeadUnits
from normrepro.measure.decorrelation import Decorrelation
from normrepro.measure.disturbance import Disturbance
from normrepro.measure.dynamics import Dynamics
from normrepro.measure.grad_norms import GradNorms
from normrepro.measure.hidden_grads import HiddenGradNorms
from normrepro.measure.layer_stats import LayerStats
from normrepro.measure.norm_timing import NormTiming
from normrepro.measure.orthogonality import Orthogonality
from normrepro.measure.ravine import Ravine
from normrepro.measure.saddle import Saddle
from normrepro.measure.scale_check import ScaleCheck
from normrepro.measure.stuck_units import StuckUnits
from normrepro.measure.weight_rank import WeightRank

# The order is the order in which the hooks of one point run (and so the order of their rows): step-0
# measurements (the toy problems among them), log-step gradients before the dynamics, extra BN evaluations
# before the probes, BN's test-time statistics before the stuck-unit counts; the whitening measurements
# (decorrelation, disturbance, layer timing) last.
INSTRUMENTS: dict[str, type[Instrument]] = {cls.name: cls for cls in (
    HiddenGradNorms, ScaleCheck, Ravine, Saddle, GradNorms, Dynamics, BNEvalModes, ActivationProbes,
    Orthogonality, BNTestStatistics, StuckUnits, LayerStats, WeightRank, DeadUnits, DeadAtInit, Decorrelation,
    Disturbance, NormTiming)}


def build_instruments(cfg, model, splits, batches) -> list[Instrument]:
    """The instruments the config switches on, in ``INSTRUMENTS`` order."""
    built = (cls.build(cfg, model, splits, batches) for cls in INSTRUMENTS.values())
    return [inst for inst in built if inst is not None]


__all__ = ["HOOKS", "INSTRUMENTS", "Context", "Instrument", "build_instruments", "overrides"]
