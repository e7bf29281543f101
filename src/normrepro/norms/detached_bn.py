"""BN whose gradient ignores that the batch statistics depend on the input: the ablation of [BN] Sec. 2.

[BN] Sec. 2 (Ioffe & Szegedy 2015) argues that normalization must be part of the gradient step: if the
optimizer treats mu_B and sigma_B^2 as constants, a layer ``x = u + b`` followed by ``x - E[x]`` gets the
update ``b <- b + Delta b`` with Delta b independent of the normalization, the output (and the loss) does
not change, and b grows without bound ([S0]: "the gradient keeps trying to move the mean and BN
undoes it, so parameters blow up").

:class:`DetachedBatchNorm` reproduces exactly that: its forward is torch's BN (batch statistics in
training, running averages at evaluation, the same parameters and buffers), but the batch mean and variance
are ``.detach()``-ed, so backprop sees ``y = gamma (x - c1) / sqrt(c2 + eps) + beta`` with constants c1, c2,
and dL/dx = gamma / sqrt(sigma_B^2 + eps) * dL/dy instead of [BN]'s full expression.
"""

from __future__ import annotations

import torch

from normrepro.norms.manual_bn import BatchNormBase, _per_channel, _reduce_dims


class DetachedBatchNorm(BatchNormBase):
    """``DetachedBatchNorm(num_features, dims, eps=1e-5, momentum_pytorch=0.1, affine=True)``.

    Forward identical to ``nn.BatchNorm1d`` (dims 0) / ``nn.BatchNorm2d`` (dims 2); the batch mean and
    (biased) variance are constants for autograd. State dicts are interchangeable with torch's BN.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        if not self.training:
            return self._eval_forward(x)
        dims = _reduce_dims(x)
        # The ablation: the statistics are cut out of the graph, so the gradient treats them as constants.
        mean = x.mean(dim=dims, keepdim=True).detach()
        var = x.var(dim=dims, unbiased=False, keepdim=True).detach()
        self._update_running_stats(mean.flatten(), var.flatten(), x.numel() // x.shape[1])
        y = (x - mean) * (var + self.eps).rsqrt()
        if self.affine:
            y = y * _per_channel(self.weight, x) + _per_channel(self.bias, x)
        return y
