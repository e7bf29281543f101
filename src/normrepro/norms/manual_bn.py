"""Batch Normalization written by hand: forward and backward in explicit tensor maths, no autograd inside.

[S3]'s claim is that BN written from the paper's equations, forward *and* backward, matches the
framework's implementation. The forward is [BN] Alg. 1 (Ioffe & Szegedy 2015), per channel over the
m = N (x H x W) values of a mini-batch B:

    mu_B      = 1/m sum_i x_i
    sigma_B^2 = 1/m sum_i (x_i - mu_B)^2            (the biased variance)
    x_hat_i   = (x_i - mu_B) / sqrt(sigma_B^2 + eps)
    y_i       = gamma x_hat_i + beta

The backward is the closed form of [BN] Sec. 3's backpropagation equations (the chain rule through mu_B
and sigma_B^2, which both depend on every x_i), collapsed into one expression per input:

    dL/dbeta  = sum_i dL/dy_i
    dL/dgamma = sum_i dL/dy_i x_hat_i
    dL/dx_i   = gamma / (m sqrt(sigma_B^2 + eps)) * (m dL/dy_i - sum_j dL/dy_j - x_hat_i sum_j dL/dy_j x_hat_j)

:func:`bn_train_forward` and :func:`bn_train_backward` are these formulas; :class:`ManualBatchNormFunction`
wires them into autograd as a ``torch.autograd.Function`` (autograd only sees the Function, never the maths
inside it), and :class:`ManualBatchNorm` is the module, a drop-in for ``nn.BatchNorm1d`` / ``nn.BatchNorm2d``
with the same parameter and buffer names, so state dicts load either way.

Running averages follow PyTorch (not Alg. 1's population statistics computed after training): after each
training batch ``running = (1 - momentum) * running + momentum * batch_stat``, where ``running_var`` takes
the *unbiased* batch variance m/(m-1) sigma_B^2 (Alg. 2 step 10's correction, applied per batch as torch
does). ``momentum=None`` gives the cumulative average, as in torch. Evaluation mode normalizes with the
running statistics.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable


def _reduce_dims(x: torch.Tensor) -> tuple[int, ...]:
    """Every dimension but the channel dimension 1: BN's statistics are per channel."""
    return (0, *range(2, x.dim()))


def _per_channel(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A (C,) vector shaped (1, C, 1, ...) to broadcast against x."""
    return v.view(1, -1, *([1] * (x.dim() - 2)))


def bn_train_forward(x: torch.Tensor, gamma: torch.Tensor | None, beta: torch.Tensor | None, eps: float):
    """[BN] Alg. 1 on a training batch. Returns ``(y, mean, var, x_hat, inv_std)``.

    ``mean`` and ``var`` (the biased batch variance) are (C,) vectors; ``x_hat`` has x's shape and
    ``inv_std = 1/sqrt(var + eps)`` is shaped (1, C, 1, ...). ``gamma``/``beta`` of None mean 1 and 0.
    """
    dims = _reduce_dims(x)
    mean = x.mean(dim=dims, keepdim=True)
    centered = x - mean
    var = (centered * centered).mean(dim=dims, keepdim=True)
    y, x_hat, inv_std = bn_normalize(x, mean.flatten(), var.flatten(), gamma, beta, eps)
    return y, mean.flatten(), var.flatten(), x_hat, inv_std


def bn_normalize(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, gamma: torch.Tensor | None,
                 beta: torch.Tensor | None, eps: float):
    """Alg. 1's last two lines with given (C,) statistics (a batch's, or a global batch's in SyncBN).
    Returns ``(y, x_hat, inv_std)``, ``inv_std`` shaped (1, C, 1, ...)."""
    inv_std = _per_channel((var + eps).rsqrt(), x)
    x_hat = (x - _per_channel(mean, x)) * inv_std
    y = x_hat if gamma is None else x_hat * _per_channel(gamma, x)
    if beta is not None:
        y = y + _per_channel(beta, x)
    return y, x_hat, inv_std


def bn_train_backward(dy: torch.Tensor, x_hat: torch.Tensor, inv_std: torch.Tensor,
                      gamma: torch.Tensor | None):
    """The closed-form gradients of [BN] Sec. 3 for a training batch. Returns ``(dx, dgamma, dbeta)``."""
    dims = _reduce_dims(dy)
    m = dy.numel() // dy.shape[1]
    sum_dy = dy.sum(dim=dims)
    sum_dy_xhat = (dy * x_hat).sum(dim=dims)
    return bn_input_gradient(dy, x_hat, inv_std, gamma, m, sum_dy, sum_dy_xhat), sum_dy_xhat, sum_dy


def bn_input_gradient(dy: torch.Tensor, x_hat: torch.Tensor, inv_std: torch.Tensor, gamma: torch.Tensor | None,
                      m, sum_dy: torch.Tensor, sum_dy_xhat: torch.Tensor) -> torch.Tensor:
    """dL/dx from the two per-channel sums over the m values the statistics were taken over (the batch's,
    or the global batch's in SyncBN): gamma / (m sigma) * (m dy - sum dy - x_hat sum dy x_hat)."""
    scale = inv_std / m if gamma is None else _per_channel(gamma, dy) * inv_std / m
    return scale * (m * dy - _per_channel(sum_dy, dy) - x_hat * _per_channel(sum_dy_xhat, dy))


class ManualBatchNormFunction(torch.autograd.Function):
    """``y, mean, var = ManualBatchNormFunction.apply(x, gamma, beta, eps)`` in training mode.

    ``mean`` and ``var`` (biased) are returned for the running averages and are not differentiable: the
    dependence of y on x through them is already inside the closed-form dL/dx. The backward is not itself
    differentiable (``once_differentiable``): double backward raises instead of being silently wrong.
    """

    @staticmethod
    def forward(ctx, x, gamma, beta, eps):
        y, mean, var, x_hat, inv_std = bn_train_forward(x, gamma, beta, eps)
        ctx.save_for_backward(x_hat, inv_std, gamma)
        ctx.has_gamma, ctx.has_beta = gamma is not None, beta is not None
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, _dmean, _dvar):
        x_hat, inv_std, gamma = ctx.saved_tensors
        dx, dgamma, dbeta = bn_train_backward(dy, x_hat, inv_std, gamma if ctx.has_gamma else None)
        need_x, need_gamma, need_beta = ctx.needs_input_grad[:3]
        return (dx if need_x else None,
                dgamma if ctx.has_gamma and need_gamma else None,
                dbeta if ctx.has_beta and need_beta else None,
                None)


class BatchNormBase(nn.Module):
    """Parameters, buffers and running-average bookkeeping shared by the hand-written BN variants.

    Names and shapes match torch's ``_BatchNorm`` (``weight``, ``bias``, ``running_mean``, ``running_var``,
    ``num_batches_tracked``), so state dicts move between these modules and ``nn.BatchNorm1d/2d``.
    ``dims`` is 0 for an (N, C) (or (N, C, L)) input and 2 for (N, C, H, W), as in ``make_norm``.
    """

    _version = 2  # torch's _BatchNorm state-dict version (the one with num_batches_tracked)

    def __init__(self, num_features: int, dims: int = 0, eps: float = 1e-5,
                 momentum_pytorch: float | None = 0.1, affine: bool = True):
        super().__init__()
        if dims not in (0, 2):
            raise ValueError(f"dims must be 0 (N, C) or 2 (N, C, H, W), got {dims}")
        self.num_features, self.dims, self.eps = num_features, dims, eps
        self.momentum = momentum_pytorch
        self.affine = affine
        self.frozen_stats = False  # True: training forwards leave the running averages as they are (modes.py)
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def reset_running_stats(self) -> None:
        self.running_mean.zero_()
        self.running_var.fill_(1.0)
        self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            nn.init.ones_(self.weight)
            nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, dims={self.dims}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}")

    def _check_input(self, x: torch.Tensor) -> None:
        ok = x.dim() in (2, 3) if self.dims == 0 else x.dim() == 4
        if not ok:
            want = "2D or 3D" if self.dims == 0 else "4D"
            raise ValueError(f"{type(self).__name__}(dims={self.dims}) expects {want} input, got {x.dim()}D")
        if x.shape[1] != self.num_features:
            raise ValueError(f"expected {self.num_features} channels in dim 1, got {x.shape[1]}")
        if self.training and x.numel() // x.shape[1] < 2:
            raise ValueError(f"expected more than 1 value per channel when training, got input {tuple(x.shape)}")

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, m: int) -> None:
        """PyTorch's running averages; ``var`` is the biased batch variance, stored unbiased (x m/(m-1))."""
        if self.frozen_stats:
            return
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
        unbiased = var.to(self.running_var.dtype) * (m / (m - 1))
        self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)

    def _eval_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inference: normalize with the running statistics, a fixed affine map of x (plain torch ops)."""
        inv_std = (self.running_var + self.eps).rsqrt()
        y = (x - _per_channel(self.running_mean, x)) * _per_channel(inv_std, x)
        if self.affine:
            y = y * _per_channel(self.weight, x) + _per_channel(self.bias, x)
        return y


class ManualBatchNorm(BatchNormBase):
    """BN whose training-mode forward and backward are the hand-written [BN] equations (see module doc).

    ``ManualBatchNorm(num_features, dims, eps=1e-5, momentum_pytorch=0.1, affine=True)``; ``dims`` 0 for
    (N, C), 2 for (N, C, H, W). Evaluation mode uses the running statistics.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        if not self.training:
            return self._eval_forward(x)
        y, mean, var = ManualBatchNormFunction.apply(x, self.weight, self.bias, self.eps)
        self._update_running_stats(mean, var, x.numel() // x.shape[1])
        return y
