"""BN's other test-time statistics on the test split, once, after training ([WJ] Sec. 3):

- ``norm.momentum_slow``: the slow second running average (bn_mode ``ema_slow``, suffix ``_emaslow``);
- ``train.bn_eval_precise: [N, ...]``: precise population statistics over N training images, augmented as
  in training (bn_mode ``precise@N``, suffix ``_preciseN``; ``norms/precise_stats.py``);
- ``train.bn_eval_test_batches: [n, ...]``: each whole test batch of n normalized with its own statistics
  (bn_mode ``batch@n``, suffix ``_batchn``).
"""

from __future__ import annotations

import logging

import torch
from torch.nn.utils import parametrize

from normrepro.data import random_crop_flip
from normrepro.measure.base import Context, Instrument
from normrepro.norms import BATCH_NORM_TYPES
from normrepro.norms.modes import population_statistics, slow_average, whole_batch_statistics
from normrepro.norms.precise_stats import precise_statistics

log = logging.getLogger(__name__)


class BNTestStatistics(Instrument):
    name = "bn_test_statistics"

    def __init__(self, slow: bool, precise: list[int], test_batches: list[int], train_x: torch.Tensor,
                 augment: bool, batch_size: int, eval_batch_size: int):
        self.slow, self.precise, self.test_batches = slow, list(precise), list(test_batches)
        self.train_x, self.augment = train_x, augment
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size

    @classmethod
    def build(cls, cfg, model, splits, batches):
        tc = cfg.train
        slow = cfg.norm.momentum_slow is not None
        if not (slow or tc.bn_eval_precise or tc.bn_eval_test_batches):
            return None
        if not any(isinstance(m, BATCH_NORM_TYPES) for m in model.modules()):
            return None
        return cls(slow, tc.bn_eval_precise, tc.bn_eval_test_batches, splits.train.x, cfg.data.augment,
                   tc.batch_size, tc.eval_batch_size)

    @torch.no_grad()
    def at_end(self, ctx: Context, step: int) -> None:
        if not ctx.is_main:
            return
        with parametrize.cached():  # as in evaluation: reparameterized weights computed once
            self._evaluate(ctx, step)

    def _evaluate(self, ctx: Context, step: int) -> None:
        ev, model = ctx.evaluator, ctx.model
        test = {"test": ev.splits["test"]}
        model.eval()
        if self.slow:
            with slow_average(model):
                ev.evaluate(step, "ema_slow", self.eval_batch_size, splits=test)
        for n in self.precise:
            x = self._precise_images(n, ctx.label)
            with population_statistics(precise_statistics(model, x, self.batch_size)):
                ev.evaluate(step, f"precise@{n}", self.eval_batch_size, splits=test)
        for b in self.test_batches:
            with whole_batch_statistics(model):
                ev.evaluate(step, f"batch@{b}", b, shuffle=True, splits=test)
        model.train()

    def _precise_images(self, n: int, label: str) -> torch.Tensor:
        """A fixed random subset of n training images, augmented as in training (the statistics BN saw)."""
        train = self.train_x
        if n > len(train):
            log.warning("[%s] train.bn_eval_precise asks for %d images; the training set has %d: using all",
                        label, n, len(train))
        gen = torch.Generator().manual_seed(0)
        x = train.index_select(0, torch.randperm(len(train), generator=gen)[:n].to(train.device))
        return random_crop_flip(x, torch.Generator(device=x.device).manual_seed(1)) if self.augment else x
