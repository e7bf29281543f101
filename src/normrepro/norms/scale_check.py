"""Numerical check of BN's invariance to the scale of the weights ([BN] Sec. 3.3, Ioffe & Szegedy 2015).

For a layer x = W u followed by BN (training mode, batch statistics) and any scalar a > 0:

    BN((aW) u) = BN(W u)                                  (the output does not change)
    d BN((aW) u) / d u    = d BN(W u) / d u               (nor does the Jacobian w.r.t. the layer input)
    d BN((aW) u) / d (aW) = 1/a * d BN(W u) / d W         (larger weights get smaller gradients)

:func:`measure_scale_invariance` evaluates the three on random data in float64 for several scales. The loss
is a fixed random linear function of the BN output, L = sum(c * BN(aWu)); the input Jacobian is compared
through vector-Jacobian products (dL/du and a few more random cotangents), since the full Jacobian of a
(256 x 100) -> (256 x 50) map would be 12800 x 25600.

The identities are exact only without BN's epsilon: with eps > 0 the scaled layer normalizes by
sqrt(a^2 var + eps) instead of a sqrt(var + eps), a relative error of about eps / (2 var) * |1 - 1/a^2|,
which is why ``eps`` is effectively 0 here (the paper's statement ignores it). torch's batch_norm rejects
eps = 0 in training mode, so the default is 1e-30, below float64 resolution next to any variance above
~1e-14 (var + 1e-30 == var exactly).
"""

from __future__ import annotations

import torch
from torch import nn


def measure_scale_invariance(scales=(0.1, 1, 10, 100), batch: int = 256, d_in: int = 100, d_out: int = 50,
                             seed: int = 0, eps: float = 1e-30, n_cotangents: int = 3) -> list[dict]:
    """One row per scale a: ``{"scale", "max_abs_output_diff", "grad_ratio_times_a", "input_grad_max_diff",
    "weight_grad_norm"}``.

    - ``max_abs_output_diff``: max |BN(aWu) - BN(Wu)| over the batch.
    - ``grad_ratio_times_a``: ||dL/d(aW)|| * a / ||dL/dW|| (1 when the gradient scales as 1/a).
    - ``input_grad_max_diff``: max |v^T d BN(aWu)/du - v^T d BN(Wu)/du| over v = c (i.e. dL/du) and
      ``n_cotangents`` random v.
    - ``weight_grad_norm``: ||dL/d(aW)|| itself.
    """
    gen = torch.Generator().manual_seed(seed)
    dt = torch.float64

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=dt)

    u = randn(batch, d_in)
    w = randn(d_out, d_in) / d_in ** 0.5  # Wu has about unit variance per unit
    c = randn(batch, d_out)  # the fixed random linear loss L = sum(c * BN(aWu))
    cotangents = [c, *(randn(batch, d_out) for _ in range(n_cotangents))]
    bn = nn.BatchNorm1d(d_out, eps=eps, track_running_stats=False, dtype=dt).train()
    with torch.no_grad():  # a non-trivial gamma and beta
        bn.weight.copy_(1 + 0.5 * randn(d_out))
        bn.bias.copy_(randn(d_out))

    def evaluate(a: float):
        scaled_w = (a * w).requires_grad_()  # the leaf is aW: its gradient is dL/d(aW)
        inp = u.clone().requires_grad_()
        y = bn(inp @ scaled_w.T)
        (grad_w,) = torch.autograd.grad((c * y).sum(), scaled_w, retain_graph=True)
        vjps = [torch.autograd.grad(y, inp, v, retain_graph=True)[0] for v in cotangents]
        return y.detach(), grad_w, vjps

    y_ref, grad_ref, vjps_ref = evaluate(1.0)
    rows = []
    for a in scales:
        a = float(a)
        y, grad_w, vjps = evaluate(a)
        rows.append({
            "scale": a,
            "max_abs_output_diff": (y - y_ref).abs().max().item(),
            "grad_ratio_times_a": (grad_w.norm() * a / grad_ref.norm()).item(),
            "input_grad_max_diff": max((g - g_ref).abs().max().item() for g, g_ref in zip(vjps, vjps_ref)),
            "weight_grad_norm": grad_w.norm().item(),
        })
    return rows
