"""Whitening over groups of features: PCA and ZCA whitening (Decorrelated BN; Huang et al., CVPR 2018,
arXiv 1804.08450) and the base class they share with IterNorm (``iter_norm.py``).

BN standardizes each unit on its own; whitening also removes the correlations between units. For one
group of g features with the m samples of a mini-batch as the columns of X (g x m):

    mu     = X 1 / m,   X_c = X - mu 1^T
    Sigma  = X_c X_c^T / m          (the biased covariance, as in the official code)
    Sigma  = U diag(l) U^T          (eigendecomposition)
    PCA:   W = diag(l + eps)^{-1/2} U^T        (rotate onto the principal axes, then scale)
    ZCA:   W = U diag(l + eps)^{-1/2} U^T      (the same, rotated back = (Sigma + eps I)^{-1/2})
    X_hat  = W X_c,   then y = gamma * X_hat + beta per unit (the affine of BN, gamma = 1, beta = 0 at init)

Both give Cov(X_hat) = I up to eps; they differ by a rotation (W_zca = U W_pca). [DBN] Sec. 3 argues that
PCA's rotation is the problem: U depends on the batch, and the order and signs of the principal axes can
change from batch to batch ("stochastic axis swapping"), so the same example gets a very different
representation depending on which batch it is in. ZCA's W is the unique symmetric inverse square root, and
moves continuously with Sigma.

Why these choices:
- **groups** ([DBN]'s group whitening): the features are split into consecutive groups of ``group_size`` (the last
  group holds the remainder, as in the official code) and each group is whitened on its own: the g x g
  covariance needs far fewer samples than the full one, and the eigendecomposition costs O(g^3) per group.
  The official MLP and CNN scripts use 16 features per group.
- **fp64**: the covariance and its eigendecomposition are computed in float64 and the matrix cast back. The
  backward through ``torch.linalg.eigh`` divides by differences of eigenvalues; float64 keeps near-equal
  eigenvalues of a small batch from turning that into noise.
- **eps** is added to the eigenvalues (the official code does the same), which bounds the gain of
  near-null directions; with it Cov(X_hat) = U diag(l / (l + eps)) U^T.
- **running statistics** for inference, as BN's: ``running_mean`` and one running whitening matrix per
  group, exponential averages with weight ``momentum_pytorch`` on the new batch (0.1 in both official
  codes). For PCA this averages matrices whose rows may have swapped or flipped between batches; that is
  what the official code does, and it is part of what the experiment measures.
- ``frozen_stats`` (set by ``norms/modes.py``) makes a training-mode forward leave the running statistics
  alone, so probes can use batch statistics without changing the run.
"""

from __future__ import annotations

import torch
from torch import nn

WHITENINGS = ("pca", "zca")


def group_sizes(num_features: int, group_size: int) -> tuple[int, int, int]:
    """(size, number of full groups, remainder): consecutive groups of ``group_size`` (capped at the width)."""
    if group_size < 1:
        raise ValueError(f"whitening group size must be >= 1, got {group_size}")
    size = min(group_size, num_features)
    return size, num_features // size, num_features % size


def as_samples(x: torch.Tensor) -> torch.Tensor:
    """(N, C) or (N, C, H, W) -> (C, m): every example and position is a sample of its channel."""
    if x.dim() == 2:
        return x.t()
    return x.transpose(0, 1).reshape(x.shape[1], -1)


def from_samples(z: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if like.dim() == 2:
        return z.t()
    n, c, *rest = like.shape
    return z.reshape(c, n, *rest).transpose(0, 1)


def eigen_whitening_matrix(xc: torch.Tensor, eps: float, method: str) -> torch.Tensor:
    """(G, g, m) centered groups -> (G, g, g) PCA or ZCA whitening matrices (computed in float64)."""
    if method not in WHITENINGS:
        raise ValueError(f"unknown whitening {method!r}; valid: {', '.join(WHITENINGS)}")
    x64 = xc.double()
    cov = x64 @ x64.transpose(-1, -2) / xc.shape[-1]
    evals, evecs = torch.linalg.eigh(cov)
    # descending order (principal axis first), as an SVD would give: PCA's rows follow it
    evals, evecs = evals.flip(-1), evecs.flip(-1)
    scale = (evals.clamp_min(0) + eps).rsqrt()
    pca = scale.unsqueeze(-1) * evecs.transpose(-1, -2)  # diag(scale) U^T
    wm = pca if method == "pca" else evecs @ pca
    return wm.to(xc.dtype)


class GroupWhiteningBase(nn.Module):
    """Groups, running statistics, the affine and the train/eval switch shared by PCA, ZCA and IterNorm.

    Subclasses define :meth:`batch_matrix`: centered groups (G, g, m) -> whitening matrices (G, g, g)."""

    def __init__(self, num_features: int, dims: int = 0, group_size: int = 16, eps: float = 1e-5,
                 momentum_pytorch: float = 0.1, affine: bool = True):
        super().__init__()
        if dims not in (0, 2):
            raise ValueError(f"dims must be 0 (N, C) or 2 (N, C, H, W), got {dims}")
        self.num_features, self.dims, self.eps, self.momentum = num_features, dims, eps, momentum_pytorch
        self.group_size, self.n_full, self.rest = group_sizes(num_features, group_size)
        self.affine = affine
        self.frozen_stats = False  # True: training forwards leave the running statistics as they are
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        g, r = self.group_size, self.rest
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_wm", torch.eye(g).repeat(self.n_full, 1, 1))
        self.register_buffer("running_wm_rest", torch.eye(r).unsqueeze(0))  # (1, r, r); r = 0: empty

    def batch_matrix(self, xc: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _parts(self, s: torch.Tensor):
        """(C, m) -> [(groups (G, g, m), slice of channels, running matrix buffer)] for full groups and rest."""
        g, n = self.group_size, self.n_full
        parts = []
        if n:
            parts.append((s[: n * g].reshape(n, g, -1), slice(0, n * g), self.running_wm))
        if self.rest:
            parts.append((s[n * g:].unsqueeze(0), slice(n * g, self.num_features), self.running_wm_rest))
        return parts

    def normalized(self, x: torch.Tensor, batch: bool, update: bool = False) -> torch.Tensor:
        """The whitened input before the affine: with the batch's statistics (``batch``) or the running ones.
        ``update`` folds the batch's mean and matrix into the running statistics."""
        s = as_samples(x)
        outs = []
        for xg, channels, running_wm in self._parts(s):
            if batch:
                mean = xg.mean(-1, keepdim=True)
                xc = xg - mean
                wm = self.batch_matrix(xc)
                if update:
                    with torch.no_grad():
                        m = self.momentum
                        self.running_mean[channels].mul_(1 - m).add_(m * mean.detach().reshape(-1))
                        running_wm.mul_(1 - m).add_(m * wm.detach())
            else:
                xc = xg - self.running_mean[channels].reshape(xg.shape[0], -1, 1)
                wm = running_wm
            outs.append((wm @ xc).reshape(-1, xg.shape[-1]))
        return from_samples(torch.cat(outs, 0), x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.num_features:
            raise ValueError(f"expected {self.num_features} channels, got {x.shape[1]}")
        z = self.normalized(x, batch=self.training, update=self.training and not self.frozen_stats)
        if not self.affine:
            return z
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return z * self.weight.view(shape) + self.bias.view(shape)

    def whitening_groups(self) -> list[tuple[int, int]]:
        """(start, stop) of every group of channels."""
        g = self.group_size
        groups = [(i * g, (i + 1) * g) for i in range(self.n_full)]
        return groups + ([(self.n_full * g, self.num_features)] if self.rest else [])

    def extra_repr(self) -> str:
        return (f"{self.num_features}, group_size={self.group_size}, eps={self.eps}, "
                f"momentum={self.momentum}, affine={self.affine}")


class EigenWhitening(GroupWhiteningBase):
    """PCA (``method='pca'``) or ZCA (``method='zca'``, [DBN]'s choice) whitening over feature groups."""

    def __init__(self, num_features: int, dims: int = 0, method: str = "zca", **kwargs):
        if method not in WHITENINGS:
            raise ValueError(f"unknown whitening {method!r}; valid: {', '.join(WHITENINGS)}")
        super().__init__(num_features, dims, **kwargs)
        self.method = method

    def batch_matrix(self, xc: torch.Tensor) -> torch.Tensor:
        return eigen_whitening_matrix(xc, self.eps, self.method)

    def extra_repr(self) -> str:
        return f"method={self.method}, " + super().extra_repr()
