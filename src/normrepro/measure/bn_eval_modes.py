"""BN evaluated with other statistics at every evaluation, beside its running averages:

- ``train.eval_shared_stats`` (recurrent BN): per-step population statistics pooled over time, [C]'s
  ablation on the same weights (bn_mode ``shared``, key suffix ``_sharedstats``);
- ``train.eval_batch_stats``: each test batch normalized with its own statistics, batches as large as
  training's (bn_mode ``batch``, key suffix ``_batchstats``).
"""

from __future__ import annotations

from normrepro.measure.base import Context, Instrument
from normrepro.norms import BATCH_NORM_TYPES
from normrepro.norms.modes import batch_statistics, shared_statistics
from normrepro.norms.stepwise_bn import StepwiseBatchNorm


class BNEvalModes(Instrument):
    name = "bn_eval_modes"

    def __init__(self, shared: bool, batch: bool, batch_size: int, eval_batch_size: int):
        self.shared, self.batch = shared, batch
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size

    @classmethod
    def build(cls, cfg, model, splits, batches):
        tc = cfg.train
        shared = tc.eval_shared_stats and any(isinstance(m, StepwiseBatchNorm) for m in model.modules())
        batch = tc.eval_batch_stats and any(isinstance(m, BATCH_NORM_TYPES) for m in model.modules())
        return cls(shared, batch, tc.batch_size, tc.eval_batch_size) if shared or batch else None

    def on_evaluate(self, ctx: Context, step: int) -> None:
        ev = ctx.evaluator
        was_training = ctx.model.training
        if self.shared:
            with shared_statistics(ctx.model):
                ev.evaluate(step, "shared", self.eval_batch_size)
        if self.batch:
            with batch_statistics(ctx.model):
                ev.evaluate(step, "batch", self.batch_size, shuffle=True)
        ctx.model.train(was_training)
