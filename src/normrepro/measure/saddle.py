"""Full-batch GD vs mini-batch SGD escaping the saddle of a deep linear network, at step 0
(``probes.saddle``; [S1] Sec. 3.2.1: SGD's small perturbations get it off saddle points). The problem is
in ``toys/deep_linear.py``; this instrument runs it once and writes the rows."""

from __future__ import annotations

from normrepro.measure.base import Context, Instrument
from normrepro.seeding import generator
from normrepro.toys.deep_linear import saddle


class Saddle(Instrument):
    """Rows ``saddle_escape_steps`` of split ``probe`` at step 0, layer = the method (gd | sgd)."""

    name = "saddle"

    def __init__(self, sc, seed: int):
        self.sc, self.seed = sc, seed

    @classmethod
    def build(cls, cfg, model, splits, batches):
        return cls(cfg.probes.saddle, cfg.seed) if cfg.probes.saddle.enabled else None

    def at_start(self, ctx: Context, step: int) -> None:
        sc = self.sc
        # the seed draws the teacher, the data, the init (shared by both methods) and SGD's batches
        out = saddle(sc.dim, sc.depth, list(sc.singular_values), sc.examples, sc.init_std, sc.lr, sc.batch,
                     sc.escape_frac, sc.max_steps, generator(self.seed, "saddle"))
        for method, steps in out.items():
            ctx.write(0, "probe", "saddle_escape_steps", steps, layer=method)
