"""Iterative Normalization (IterNorm; Huang et al., CVPR 2019, arXiv 1904.03441): ZCA whitening without an
eigendecomposition, by Newton's iterations for the inverse square root of the covariance.

For one group ([IterNorm] Algorithm 1; ``whitening.GroupWhiteningBase`` holds the groups, running statistics
and affine):

    Sigma   = eps I + X_c X_c^T / m                (eps inside, as in the official code)
    Sigma_N = Sigma / tr(Sigma)                    (trace-normalized: eigenvalues in (0, 1], so it converges)
    P_0 = I,   P_k = (3 P_{k-1} - P_{k-1}^3 Sigma_N) / 2,   k = 1..T      (Newton's iterations)
    W       = P_T / sqrt(tr(Sigma))                (P_T ~ Sigma_N^{-1/2}, so W ~ Sigma^{-1/2})

As T grows W tends to ZCA's (Sigma + eps I)^{-1/2} with the same eps; a finite T stops short along the
small-eigenvalue directions (each iteration moves an eigenvalue's factor only part of the way), so IterNorm
whitens less than ZCA, which [IterNorm] Sec. 4 argues is useful: it trades decorrelation for a smaller
stochastic normalization disturbance. T = 5 is the paper's and the official code's default. Only matrix
products: cheap where an eigendecomposition is slow (GPUs), and autograd differentiates it directly (the
official code writes the same backward by hand). The iteration runs in the input's dtype (float32 in
training), as the official code does.

A caveat measured in ``tests/test_whitening.py``: this (uncoupled) form is not numerically stable once it has
converged. Near the fixed point a rounding error E_ij in the eigenbasis is multiplied by
1 - (r + r^2) / 2 with r = sqrt(l_j / l_i) per iteration, which exceeds 1 in size when two eigenvalues differ
by more than a factor ~2.4; so after convergence (in float64 ~10-15 iterations for eigenvalues within 16x)
the error grows again. With the paper's small T the iteration stops long before that.
"""

from __future__ import annotations

import torch

from normrepro.norms.whitening import GroupWhiteningBase


def newton_whitening_matrix(xc: torch.Tensor, eps: float, iterations: int) -> torch.Tensor:
    """(G, g, m) centered groups -> (G, g, g) IterNorm whitening matrices after ``iterations`` steps."""
    if iterations < 0:
        raise ValueError(f"IterNorm needs T >= 0 iterations, got {iterations}")
    g, m = xc.shape[-2], xc.shape[-1]
    eye = torch.eye(g, dtype=xc.dtype, device=xc.device)
    sigma = eps * eye + xc @ xc.transpose(-1, -2) / m
    trace = sigma.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None]
    sigma_n = sigma / trace
    p = eye.expand_as(sigma)
    for _ in range(iterations):
        p = 1.5 * p - 0.5 * (p @ p @ p @ sigma_n)
    return p * trace.rsqrt()


class IterNorm(GroupWhiteningBase):
    """IterNorm over feature groups with ``iterations`` (T) Newton steps."""

    def __init__(self, num_features: int, dims: int = 0, iterations: int = 5, **kwargs):
        if iterations < 0:
            raise ValueError(f"IterNorm needs T >= 0 iterations, got {iterations}")
        super().__init__(num_features, dims, **kwargs)
        self.iterations = iterations

    def batch_matrix(self, xc: torch.Tensor) -> torch.Tensor:
        return newton_whitening_matrix(xc, self.eps, self.iterations)

    def extra_repr(self) -> str:
        return f"T={self.iterations}, " + super().extra_repr()
