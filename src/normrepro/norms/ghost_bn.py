"""Batch Normalization over "ghost" batches, with an optional second (slow) running average.

[WJ] (Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm", Sec. 3-4) separates the *normalization batch*
(the examples whose statistics normalize each other) from the SGD batch: an SGD batch of N examples is
split into N / g groups of g examples and each group is normalized with its own mean and (biased) variance,
[BN] Alg. 1 applied per group. g = N is ordinary BN; a small g makes the training-time statistics noisier
and further from the population statistics used at test time (the train-test inconsistency [WJ] Sec. 4
studies).

Running averages follow PyTorch: one update per SGD batch with the mean over groups of each group's mean and
unbiased variance (g/(g-1) correction). ``momentum_slow`` keeps a second exponential average with another
momentum in the buffers ``running_mean_slow`` / ``running_var_slow``, so one training run yields the
test-time statistics of two momenta ([WJ] Sec. 3.1: EMA statistics lag the weights; the lag grows as the
momentum shrinks). ``frozen_stats`` (set by ``modes.frozen_running_averages``) freezes both averages.
"""

from __future__ import annotations

import torch

from normrepro.norms.manual_bn import BatchNormBase, _per_channel


class GhostBatchNorm(BatchNormBase):
    """``GhostBatchNorm(num_features, dims, ghost_batch=0, momentum_slow=None, eps, momentum_pytorch, affine)``.

    ``ghost_batch`` (examples per normalization group; 0 = the whole batch) must divide the training batch.
    Evaluation mode normalizes with ``running_mean``/``running_var`` like torch's BN. Gradients flow through
    the group statistics (plain autograd), as in [BN].
    """

    def __init__(self, num_features: int, dims: int = 0, ghost_batch: int = 0, momentum_slow: float | None = None,
                 eps: float = 1e-5, momentum_pytorch: float | None = 0.1, affine: bool = True):
        super().__init__(num_features, dims, eps, momentum_pytorch, affine)
        if ghost_batch < 0:
            raise ValueError(f"ghost_batch must be >= 0 (0 = the whole batch), got {ghost_batch}")
        self.ghost_batch = ghost_batch
        self.momentum_slow = momentum_slow
        if momentum_slow is not None:
            self.register_buffer("running_mean_slow", torch.zeros(num_features))
            self.register_buffer("running_var_slow", torch.ones(num_features))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, ghost_batch={self.ghost_batch}, momentum_slow={self.momentum_slow}"

    def reset_running_stats(self) -> None:
        super().reset_running_stats()
        if self.momentum_slow is not None:
            self.running_mean_slow.zero_()
            self.running_var_slow.fill_(1.0)

    def group_size(self, n: int) -> int:
        """Examples per normalization group for a batch of ``n``."""
        g = self.ghost_batch or n
        if n % g:
            raise ValueError(f"batch of {n} examples does not split into ghost batches of {g}")
        return g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        if not self.training:
            return self._eval_forward(x)
        g = self.group_size(x.shape[0])
        groups = x.reshape(x.shape[0] // g, g, *x.shape[1:])  # (groups, g, C, ...)
        dims = (1, *range(3, groups.dim()))  # within a group: examples and spatial positions
        mean = groups.mean(dim=dims, keepdim=True)
        var = groups.var(dim=dims, unbiased=False, keepdim=True)
        y = ((groups - mean) * (var + self.eps).rsqrt()).reshape(x.shape)
        m = g * (x.numel() // (x.shape[0] * x.shape[1]))  # values per channel in one group
        if m < 2:
            raise ValueError(f"a normalization group of {g} example(s) has one value per channel: use a larger "
                             "norm.ghost_batch (or a conv layer)")
        self._update_all(mean.detach(), var.detach(), m)
        if self.affine:
            y = y * _per_channel(self.weight, x) + _per_channel(self.bias, x)
        return y

    @torch.no_grad()
    def _update_all(self, mean: torch.Tensor, var: torch.Tensor, m: int) -> None:
        if self.frozen_stats:  # modes.frozen_running_averages: neither average moves
            return
        c = self.num_features
        group_mean = mean.reshape(-1, c).mean(0)
        group_var = var.reshape(-1, c).mean(0)  # biased within each group; corrected below as torch does
        self._update_running_stats(group_mean, group_var, m)
        if self.momentum_slow is not None:
            f = self.momentum_slow
            self.running_mean_slow.mul_(1 - f).add_(group_mean, alpha=f)
            self.running_var_slow.mul_(1 - f).add_(group_var * (m / (m - 1)), alpha=f)
