"""Synchronized Batch Normalization for data-parallel training on any torch.distributed backend (gloo on CPU).

With a per-process batch of 2-4 images, each process's BN statistics are noisy. SyncBN ([S3]) normalizes
every process's examples with the statistics of the *global* batch. [S3]'s observation is that one
synchronization suffices: the global mean and variance follow from per-channel sums, so each process
all-reduces the vector

    [sum_i x_i (C values), sum_i x_i^2 (C values), m]          (float64, one all-reduce)

and computes mu = sum x / M and sigma^2 = sum x^2 / M - mu^2 with M the global count; the forward is then
[BN] Alg. 1 with (mu, sigma^2). The backward needs two global sums as well ([BN] Sec. 3, with the sums over
the global batch):

    dL/dx_i = gamma / (M sqrt(sigma^2 + eps)) * (M dL/dy_i - sum_j dL/dy_j - x_hat_i sum_j dL/dy_j x_hat_j)

so it all-reduces [sum dL/dy, sum dL/dy * x_hat] once. Each process's dL/dgamma and dL/dbeta are its local
sums; DistributedDataParallel averages them (and every other gradient) across processes. Since every process
back-propagates its own loss, the all-reduced sums carry the same factor as DDP's averaging undoes, which is
how ``torch.nn.SyncBatchNorm`` does it too.

``torch.nn.SyncBatchNorm`` refuses CPU tensors (torch 2.14, docs/stack.md), hence this module; on CUDA the
registry can hand out torch's instead (``norm.sync_impl: torch``). Without an initialized process group, or
with one process, this is plain BN. Synchronization happens only for training forwards with gradients
enabled: evaluation (and statistics recomputed under ``no_grad``) stays local, so one process can evaluate
while the others wait.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.autograd.function import once_differentiable

from normrepro.norms.manual_bn import (
    BatchNormBase,
    _reduce_dims,
    bn_input_gradient,
    bn_normalize,
    bn_train_forward,
)


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class SyncBatchNormFunction(torch.autograd.Function):
    """``y, mean, var, m = SyncBatchNormFunction.apply(x, gamma, beta, eps)``: BN over the global batch.

    ``mean`` and the biased ``var`` are the global statistics and ``m`` the global count per channel (for the
    running averages); they are not differentiable, their effect on y is inside the closed-form backward.
    """

    @staticmethod
    def forward(ctx, x, gamma, beta, eps):
        dims = _reduce_dims(x)
        stats = torch.cat([x.sum(dims, dtype=torch.float64), (x.double() * x.double()).sum(dims),
                           torch.tensor([x.numel() // x.shape[1]], dtype=torch.float64, device=x.device)])
        if _world() > 1:
            dist.all_reduce(stats)  # the one forward synchronization
        c = x.shape[1]
        m = stats[-1]
        mean64 = stats[:c] / m
        var64 = (stats[c:2 * c] / m - mean64 * mean64).clamp_min(0.0)
        mean, var = mean64.to(x.dtype), var64.to(x.dtype)
        y, x_hat, inv_std = bn_normalize(x, mean, var, gamma, beta, eps)
        ctx.save_for_backward(x_hat, inv_std, gamma, m)
        ctx.has_gamma, ctx.has_beta = gamma is not None, beta is not None
        ctx.mark_non_differentiable(mean, var, m)
        return y, mean, var, m

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, _dmean, _dvar, _dm):
        x_hat, inv_std, gamma, m = ctx.saved_tensors
        dims = _reduce_dims(dy)
        local = torch.cat([dy.sum(dims, dtype=torch.float64), (dy.double() * x_hat.double()).sum(dims)])
        dbeta, dgamma = local[:dy.shape[1]].to(dy.dtype), local[dy.shape[1]:].to(dy.dtype)  # local sums
        if _world() > 1:
            local = local.clone()
            dist.all_reduce(local)  # the one backward synchronization
        c = dy.shape[1]
        sum_dy, sum_dy_xhat = local[:c].to(dy.dtype), local[c:].to(dy.dtype)
        dx = bn_input_gradient(dy, x_hat, inv_std, gamma if ctx.has_gamma else None, m.to(dy.dtype), sum_dy,
                               sum_dy_xhat)
        need_x, need_gamma, need_beta = ctx.needs_input_grad[:3]
        return (dx if need_x else None,
                dgamma if ctx.has_gamma and need_gamma else None,
                dbeta if ctx.has_beta and need_beta else None,
                None)


class SyncBatchNorm(BatchNormBase):
    """``SyncBatchNorm(num_features, dims, eps=1e-5, momentum_pytorch=0.1, affine=True)``: drop-in for
    ``nn.BatchNorm1d/2d`` (same parameters and buffers) whose training statistics span every process."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        if not self.training:
            return self._eval_forward(x)
        if not torch.is_grad_enabled():  # local statistics outside training steps (see module doc)
            y, mean, var, _, _ = bn_train_forward(x, self.weight, self.bias, self.eps)
            self._update_running_stats(mean, var, x.numel() // x.shape[1])
            return y
        y, mean, var, m = SyncBatchNormFunction.apply(x, self.weight, self.bias, self.eps)
        self._update_running_stats(mean, var, int(m.item()))
        return y
