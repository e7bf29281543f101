"""GD vs heavy-ball momentum on ill-conditioned quadratics, at step 0 (``probes.ravine``; [S1] Sec. 3.3:
momentum damps the oscillation across a ravine). The problems and the closed-form rates are in
``toys/quadratic.py``; this instrument runs them once and writes the rows."""

from __future__ import annotations

from normrepro.measure.base import Context, Instrument
from normrepro.seeding import generator
from normrepro.toys.quadratic import METHODS, ravine


class Ravine(Instrument):
    """Rows of split ``probe`` at step 0, layer = the method (gd | heavy_ball): ``steps_to_tol`` per condition
    number (unit = kappa) and ``ravine_slope``, the log-log slope of steps against kappa."""

    name = "ravine"

    def __init__(self, rc, seed: int):
        self.rc, self.seed = rc, seed

    @classmethod
    def build(cls, cfg, model, splits, batches):
        return cls(cfg.probes.ravine, cfg.seed) if cfg.probes.ravine.enabled else None

    def at_start(self, ctx: Context, step: int) -> None:
        rc = self.rc
        # the seed draws each quadratic's rotation and start point (the spectrum is fixed by kappa)
        out = ravine(list(rc.kappas), rc.dim, rc.tol, rc.max_steps, generator(self.seed, "ravine"))
        for m in METHODS:
            for kappa, steps in zip(rc.kappas, out[m]["steps"]):
                ctx.write(0, "probe", "steps_to_tol", steps, layer=m, unit=int(kappa))
            ctx.write(0, "probe", "ravine_slope", out[m]["slope"], layer=m)
