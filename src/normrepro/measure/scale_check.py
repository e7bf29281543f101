"""[BN] Sec. 3.3's scale invariance measured at step 0 (``probes.scale_check``): BN(aWu) = BN(Wu) and the
gradient scales as 1/a, on a fixed random layer (``norms/scale_check.py`` computes it)."""

from __future__ import annotations

from normrepro.measure.base import Context, Instrument
from normrepro.norms.scale_check import measure_scale_invariance

SCALES = (0.01, 0.1, 10.0, 100.0)  # the factors a


class ScaleCheck(Instrument):
    """Rows ``bn_scale_output_diff`` and ``bn_scale_grad_ratio`` (layer = "a=<scale>") of split ``probe``."""

    name = "scale_check"

    def __init__(self, seed: int):
        self.seed = seed

    @classmethod
    def build(cls, cfg, model, splits, batches):
        return cls(cfg.seed) if cfg.probes.scale_check else None

    def at_start(self, ctx: Context, step: int) -> None:
        for r in measure_scale_invariance(scales=SCALES, seed=self.seed):
            layer = f"a={r['scale']:g}"
            ctx.write(0, "probe", "bn_scale_output_diff", r["max_abs_output_diff"], layer=layer)
            ctx.write(0, "probe", "bn_scale_grad_ratio", r["grad_ratio_times_a"], layer=layer)
