"""The toy problems' sections of ``probes`` (``probes.ravine``, ``probes.saddle``; the optimizers experiment),
kept apart from config.py so that each file stays small."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RavineConfig:
    """probes.ravine: GD vs heavy ball on ill-conditioned quadratics at step 0 (toys/quadratic.py)."""
    enabled: bool = False
    kappas: list[float] = field(default_factory=lambda: [10.0, 100.0, 1000.0, 10000.0])  # condition numbers L/mu
    dim: int = 32  # dimensions of the quadratic
    tol: float = 1e-6  # relative distance to the minimum ||x_t|| / ||x_0|| that counts as converged
    max_steps: int = 1000000  # steps before giving up (then steps_to_tol = max_steps)


@dataclass
class SaddleConfig:
    """probes.saddle: a deep linear net from a small init, full-batch GD vs SGD, at step 0 (toys/deep_linear.py)."""
    enabled: bool = False
    dim: int = 10  # input = hidden = output units
    depth: int = 3  # weight matrices
    singular_values: list[float] = field(default_factory=lambda: [3.0, 2.0, 1.0])  # of the teacher map
    examples: int = 512  # training examples (x ~ N(0, I))
    init_std: float = 0.01  # std of every initial weight entry
    lr: float = 0.05  # the same step for GD and SGD
    batch: int = 8  # examples per SGD step (drawn with replacement)
    escape_frac: float = 0.5  # escaped: full-batch loss <= this fraction of its initial value
    max_steps: int = 20000
