"""Mini-batch index schedules for SGD, a pure function of (seed, step).

The data order has its own seed, separate from initialization and augmentation randomness, so
experiments can vary one without the other; and because batch(step) depends on nothing but
(seed, step), a run resumed at step k sees exactly the batches an uninterrupted run would have.
The "fixed" and "sorted" orders exist to probe batch norm's dependence on which examples share
a mini-batch (the same companions every epoch; single-class batches).
"""

from __future__ import annotations

import torch

from normrepro.data.augment import random_crop_flip

ORDERS = ("reshuffle", "fixed", "sorted")

# Epoch e of seed s uses manual_seed(s * _EPOCH_STRIDE + e): a prime stride keeps the streams of
# nearby seeds apart for any realistic number of epochs.
_EPOCH_STRIDE = 1_000_003


class BatchSchedule:
    """Index batches for SGD.

    reshuffle: a new permutation every epoch; fixed: one permutation, drawn once, reused every
    epoch (the same examples always share a mini-batch); sorted: examples sorted by class
    (stable), never shuffled. The last incomplete batch of an epoch is dropped, so every batch
    has exactly batch_size examples.
    """

    def __init__(self, labels: torch.Tensor, batch_size: int, order: str, seed: int) -> None:
        if order not in ORDERS:
            raise ValueError(f"unknown batch order {order!r}; valid orders: {', '.join(ORDERS)}")
        n = len(labels)
        if not 1 <= batch_size <= n:
            raise ValueError(f"batch_size={batch_size} must be between 1 and the {n} examples")
        self.order = order
        self.seed = seed
        self.batch_size = batch_size
        self.steps_per_epoch = n // batch_size
        self._n = n
        self._device = labels.device
        self._epoch = -1  # epoch of the cached permutation (-1: none yet)
        self._perm = torch.empty(0, dtype=torch.int64)
        if order == "sorted":
            self._perm = torch.sort(labels, stable=True).indices
        elif order == "fixed":
            self._perm = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * _EPOCH_STRIDE + epoch)
        return torch.randperm(self._n, generator=generator).to(self._device)

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """All n indices in the order epoch `epoch` visits them (the tail past the last batch is skipped)."""
        if self.order == "reshuffle" and epoch != self._epoch:
            self._perm = self._permutation(epoch)
            self._epoch = epoch
        return self._perm

    def batch(self, step: int) -> torch.Tensor:
        """int64 indices of global step `step` (epoch = step // steps_per_epoch)."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        epoch, i = divmod(step, self.steps_per_epoch)
        start = i * self.batch_size
        # clone: callers may modify the batch in place without corrupting the cached order.
        return self.epoch_order(epoch)[start : start + self.batch_size].clone()


class TrainingBatches:
    """The training examples of step ``step``: the schedule's indices gathered from the in-memory training
    split, augmented as a whole (``augment``: a generator for ``random_crop_flip``, or None), then cut to
    this process's slice (``shard``, a data-parallel job's ``DistContext.shard``, or None)."""

    def __init__(self, split, schedule: BatchSchedule, augment: torch.Generator | None = None, shard=None):
        self.split, self.schedule, self.augment, self.shard = split, schedule, augment, shard
        self.steps_per_epoch = schedule.steps_per_epoch

    def get(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x, y, idx)`` of step ``step``."""
        idx = self.schedule.batch(step)
        x, y = self.split.x.index_select(0, idx), self.split.y.index_select(0, idx)  # faster than x[idx] here
        if self.augment is not None:
            x = random_crop_flip(x, self.augment)
        if self.shard is not None:
            x, y = self.shard(x), self.shard(y)
        return x, y, idx
