"""Which statistics BN normalizes with: the one place that switches them.

Every evaluation mode of the repository is a context manager here, named by the ``bn_mode`` it logs
(``store.BN_MODES``):

- ``population`` (no context: eval mode): each layer's running averages, the network as deployed.
- ``batch``: each forward batch normalizes with its own statistics ([BN] Alg. 1 at test time), running
  averages *frozen* (:func:`frozen_running_averages`), dropout off. Used by the probes and by
  ``train.eval_batch_stats``.
- ``batch@n``: the same over whole test batches of n, ghost groups switched off ([WJ] Sec. 3).
- ``ema_slow``: the slow second running average of ``GhostBatchNorm`` ([WJ] Sec. 3.1).
- ``precise@N``: population statistics recomputed over N training images (``precise_stats.py``, [WJ] 3.2).
- ``shared``: recurrent BN with its per-step population statistics pooled over time ([C]'s ablation).

Freezing is an explicit flag, not ``momentum = 0``: torch's ``_BatchNorm`` layers get
``track_running_stats = False`` for the duration (their forward then passes no running buffers and does
not count the batch), the repository's own BN layers (``BatchNormBase``) ``frozen_stats = True``.
"""

from __future__ import annotations

import contextlib

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from normrepro.norms.ghost_bn import GhostBatchNorm
from normrepro.norms.manual_bn import BatchNormBase
from normrepro.norms.stepwise_bn import StepwiseBatchNorm
from normrepro.norms.whitening import GroupWhiteningBase

# Every layer that normalizes with batch statistics in training and running averages at test time (the
# whitening layers too: running mean and whitening matrix; they have no running_var, see config_check).
BATCH_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.SyncBatchNorm, BatchNormBase, GroupWhiteningBase)


def bn_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, BATCH_NORM_TYPES)]


@contextlib.contextmanager
def frozen_running_averages(model: nn.Module):
    """Training-mode forwards leave every BN layer's running averages (and batch counters) untouched."""
    layers = bn_layers(model)
    saved = [(m, m.track_running_stats if isinstance(m, _BatchNorm) else m.frozen_stats) for m in layers]
    for m in layers:
        if isinstance(m, _BatchNorm):
            m.track_running_stats = False
        else:
            m.frozen_stats = True
    try:
        yield model
    finally:
        for m, value in saved:
            if isinstance(m, _BatchNorm):
                m.track_running_stats = value
            else:
                m.frozen_stats = value


@contextlib.contextmanager
def batch_statistics(model: nn.Module):
    """Eval mode (dropout off) except BN layers, which normalize with the batch's own statistics while their
    running averages stay frozen."""
    was_training = model.training
    model.eval()
    layers = bn_layers(model)
    try:
        with frozen_running_averages(model):
            for m in layers:
                m.train()
            yield model
    finally:
        model.train(was_training)


@contextlib.contextmanager
def whole_batch_statistics(model: nn.Module):
    """``batch`` statistics over each whole forward batch: ghost groups switched off."""
    ghosts = [(m, m.ghost_batch) for m in model.modules() if isinstance(m, GhostBatchNorm)]
    try:
        for m, _ in ghosts:
            m.ghost_batch = 0
        with batch_statistics(model):
            yield model
    finally:
        for m, g in ghosts:
            m.ghost_batch = g


@contextlib.contextmanager
def population_statistics(stats: dict[nn.Module, tuple]):
    """Temporarily make every BN layer's running statistics ``stats[layer]`` (eval mode then uses them)."""
    saved = {m: (m.running_mean.clone(), m.running_var.clone()) for m in stats}
    try:
        for m, (mean, var) in stats.items():
            m.running_mean.copy_(mean.to(m.running_mean.dtype))
            m.running_var.copy_(var.to(m.running_var.dtype))
        yield
    finally:
        for m, (mean, var) in saved.items():
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)


@contextlib.contextmanager
def slow_average(model: nn.Module):
    """Every ``GhostBatchNorm`` with a slow running average normalizes with it instead (eval mode)."""
    layers = [m for m in model.modules() if isinstance(m, GhostBatchNorm) and m.momentum_slow is not None]
    if not layers:
        raise ValueError("no GhostBatchNorm layer with a slow running average (set norm.momentum_slow)")

    def swap() -> None:
        for m in layers:
            m.running_mean, m.running_mean_slow = m.running_mean_slow, m.running_mean
            m.running_var, m.running_var_slow = m.running_var_slow, m.running_var

    swap()
    try:
        yield model
    finally:
        swap()


@contextlib.contextmanager
def shared_statistics(model: nn.Module):
    """Eval mode with every StepwiseBatchNorm normalizing all steps with its pooled population statistics
    (the same trained weights, statistics shared over time)."""
    was_training = model.training
    layers = [m for m in model.modules() if isinstance(m, StepwiseBatchNorm)]
    model.eval()
    for m in layers:
        m.pooled_eval = True
    try:
        yield model
    finally:
        for m in layers:
            m.pooled_eval = False
        model.train(was_training)
