"""Orthogonal Weight Normalization (OWN; Huang et al., AAAI 2018, arXiv 1709.06079), as a parametrization.

The layer keeps a free proxy matrix V (out x fan_in; a conv filter bank out x in x k x k is read as
out x (in*k*k)) and uses the weight

    W = s * (V_c V_c^T + eps I)^{-1/2} V_c,   V_c = V - mean over each row   ([OWN] Eq. 6-8, the "OLM"),

computed separately for groups of at most ``group_size`` rows. Each group's rows are then orthonormal
(W_g W_g^T = s^2 I up to eps), i.e. W sits on a product of Stiefel manifolds, and the map V -> W is
differentiable: autograd carries the gradient through the eigendecomposition back to V ([OWN] Sec. 3.3
derives the same backward by hand).

- **Group size.** ``group_size`` is the number of *rows* (output channels) per group, [OWN]'s 64 by default.
  Orthonormal rows need rows <= the dimension they live in, and centering removes one dimension (every
  centered row is orthogonal to the all-ones vector), so the groups are capped at fan_in - 1 rows. A layer
  with more outputs than that (e.g. a 3->64 first conv, fan_in 27) gets several groups, each orthonormal
  within itself. The last group holds the remainder when the rows do not divide evenly.
- **eps.** Added to the eigenvalues of the g x g Gram matrix before the inverse square root (the official
  code's DBN modules use 1e-5): it bounds the gain of near-null directions. The price is W_g W_g^T =
  U diag(l / (l + eps)) U^T instead of I: negligible while the eigenvalues l of V_c V_c^T stay >> eps.
- **scale s.** Orthonormal rows have unit norm; a ReLU layer whose filters have unit norm halves the second
  moment of its input at each layer. He initialization's rows have squared norm ~2 (Var w = 2 / fan_in), so
  ``scale = sqrt(2)`` makes an OWN layer carry the same signal scale as a He-initialized plain layer (the
  official PyTorch module multiplies by a fixed 1.414, "NScale"). ``scale = 1`` is the bare OLM.
- W does not change when V is multiplied by a constant (up to eps), so V's scale is free; weight decay
  on V changes only the learning dynamics (it shrinks V, which raises the effective step on W).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def effective_group_size(group_size: int, fan_in: int) -> int:
    """Rows per group actually used: ``group_size`` capped at fan_in - 1 (centered rows span fan_in - 1 dims)."""
    if fan_in < 2:
        raise ValueError(f"OWN needs fan_in >= 2 (centered rows of length {fan_in} are zero)")
    if group_size < 1:
        raise ValueError(f"OWN group size must be >= 1, got {group_size}")
    return min(group_size, fan_in - 1)


def row_groups(rows: int, size: int) -> list[tuple[int, int]]:
    """(start, stop) of consecutive groups of ``size`` rows; the last one holds the remainder."""
    return [(start, min(start + size, rows)) for start in range(0, rows, size)]


def whiten_rows(z: torch.Tensor, eps: float) -> torch.Tensor:
    """(..., g, d) -> (S + eps I)^{-1/2} Z_c with Z_c = Z centered per row and S = Z_c Z_c^T (batched).

    The inverse square root comes from ``torch.linalg.eigh`` of the small g x g matrix S = U diag(l) U^T:
    S^{-1/2} = U diag((l + eps)^{-1/2}) U^T. Eigenvalues are clamped at 0 first (round-off can make the
    smallest slightly negative)."""
    zc = z - z.mean(dim=-1, keepdim=True)
    gram = zc @ zc.transpose(-1, -2)
    evals, evecs = torch.linalg.eigh(gram)
    inv_sqrt = (evecs * (evals.clamp_min(0) + eps).rsqrt().unsqueeze(-2)) @ evecs.transpose(-1, -2)
    return inv_sqrt @ zc


def orthonormal_rows(v: torch.Tensor, group_size: int, eps: float) -> torch.Tensor:
    """The OLM transform of an (out, fan_in) matrix in groups of ``group_size`` rows (already capped).

    Whole groups go through one batched eigendecomposition; a remainder group is done on its own."""
    rows, fan_in = v.shape
    n_full = rows // group_size
    parts = []
    if n_full:
        full = v[: n_full * group_size].reshape(n_full, group_size, fan_in)
        parts.append(whiten_rows(full, eps).reshape(n_full * group_size, fan_in))
    if rows % group_size:
        parts.append(whiten_rows(v[n_full * group_size:], eps))
    return parts[0] if len(parts) == 1 else torch.cat(parts, 0)


class OrthogonalWeight(nn.Module):
    """Parametrization V -> W = s * OLM(V) for ``torch.nn.utils.parametrize.register_parametrization``.

    ``group_size`` is the configured number of rows per group; ``self.group_size`` is the one used
    (capped at fan_in - 1)."""

    def __init__(self, fan_in: int, group_size: int = 64, eps: float = 1e-5, scale: float = math.sqrt(2.0)):
        super().__init__()
        self.group_size = effective_group_size(group_size, fan_in)
        self.eps, self.scale = float(eps), float(scale)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        with torch.autocast(v.device.type, enabled=False):  # the eigendecomposition in float32 in a bf16 forward
            v = v.to(torch.promote_types(v.dtype, torch.float32))  # at least float32 (float64 stays)
            w = orthonormal_rows(v.reshape(v.shape[0], -1), self.group_size, self.eps)
        return (w * self.scale).reshape(v.shape)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, eps={self.eps:g}, scale={self.scale:g}"
