"""``make_norm(kind, num_features, dims)``: the one place a model gets its normalization layer.

Kinds (torch.nn implementations; the statistics each normalizes over, for an input of shape (N, C, ...)):
- ``bn``  Batch Normalization, Ioffe & Szegedy 2015, Alg. 1: per channel over (N, H, W); running averages
  at test time. With ``ghost_batch`` > 0 or a ``momentum_slow`` it is ``GhostBatchNorm`` (``ghost_bn.py``):
  per channel over groups of ``ghost_batch`` examples ([WJ] Sec. 4), optionally with a second running average.
- ``ln``  Layer Normalization, Ba et al. 2016, Eq. 4: per example over (C, H, W); a per-channel gain and bias.
- ``gn``  Group Normalization, Wu & He 2018, Eq. 1-3: per example over (C/G, H, W) for each of G groups.
- ``in``  Instance Normalization (Ulyanov et al. 2016), = GN with one channel per group; images only.
- ``bn_manual``   BN with the hand-written forward/backward of [BN] Alg. 1 and Sec. 3 (``manual_bn.py``);
  same statistics, running averages and state dict as ``bn``.
- ``bn_detached`` BN whose gradient treats the batch mean/variance as constants, the ablation of [BN] Sec. 2
  (``detached_bn.py``); forward identical to ``bn``.
- ``syncbn`` BN whose training statistics span every process of a data-parallel job (``sync_bn.py``, one
  all-reduce forward and one backward); plain BN in a single process. ``sync_impl: torch`` hands out
  ``torch.nn.SyncBatchNorm`` instead (CUDA only).
- ``pca`` / ``zca`` PCA / ZCA whitening over groups of ``group_size`` features (``whitening.py``;
  Decorrelated BN, Huang et al. 2018, is ``zca``); running mean and whitening matrix at test time.
- ``iternorm`` ZCA approximated by ``iter_T`` Newton iterations (``iter_norm.py``; Huang et al. 2019).
- ``none`` identity.
"""

from __future__ import annotations

from torch import nn

from normrepro.norms.detached_bn import DetachedBatchNorm
from normrepro.norms.ghost_bn import GhostBatchNorm
from normrepro.norms.iter_norm import IterNorm
from normrepro.norms.manual_bn import ManualBatchNorm
from normrepro.norms.sync_bn import SyncBatchNorm
from normrepro.norms.whitening import EigenWhitening

SYNC_IMPLS = ("manual", "torch")


def _bn(c, dims, o):
    if o["ghost_batch"] or o["momentum_slow"] is not None:
        return GhostBatchNorm(c, dims, o["ghost_batch"], o["momentum_slow"], eps=o["eps"],
                              momentum_pytorch=o["momentum_pytorch"], affine=o["affine"])
    cls = nn.BatchNorm1d if dims == 0 else nn.BatchNorm2d
    return cls(c, eps=o["eps"], momentum=o["momentum_pytorch"], affine=o["affine"])


def _hand_written(cls):
    return lambda c, dims, o: cls(c, dims, eps=o["eps"], momentum_pytorch=o["momentum_pytorch"], affine=o["affine"])


def _syncbn(c, dims, o):
    if o["sync_impl"] == "torch":
        return nn.SyncBatchNorm(c, eps=o["eps"], momentum=o["momentum_pytorch"], affine=o["affine"])
    if o["sync_impl"] != "manual":
        raise ValueError(f"unknown sync_impl {o['sync_impl']!r}; valid: {', '.join(SYNC_IMPLS)}")
    return SyncBatchNorm(c, dims, eps=o["eps"], momentum_pytorch=o["momentum_pytorch"], affine=o["affine"])


def _ln(c, dims, o):
    # On images [GN]'s LN: one mean/var per example over (C, H, W) with per-channel affine = GN(1 group).
    return nn.LayerNorm(c, eps=o["eps"], elementwise_affine=o["affine"]) if dims == 0 else \
        nn.GroupNorm(1, c, eps=o["eps"], affine=o["affine"])


def _gn(c, dims, o):
    return nn.GroupNorm(_largest_divisor_at_most(c, o["groups"]), c, eps=o["eps"], affine=o["affine"])


def _in(c, dims, o):
    if dims == 0:
        raise ValueError("norm kind 'in' (instance norm) needs spatial dims: a (N, C) layer has one value "
                         "per channel and example, so use it on conv layers only")
    return nn.GroupNorm(c, c, eps=o["eps"], affine=o["affine"])


def _whitening(method):
    return lambda c, dims, o: EigenWhitening(c, dims, method, group_size=o["group_size"], eps=o["eps"],
                                             momentum_pytorch=o["momentum_pytorch"], affine=o["affine"])


def _iternorm(c, dims, o):
    return IterNorm(c, dims, o["iter_T"], group_size=o["group_size"], eps=o["eps"],
                    momentum_pytorch=o["momentum_pytorch"], affine=o["affine"])


# norm.kind -> builder(channels, dims, options)
NORMS = {"none": lambda c, dims, o: nn.Identity(), "bn": _bn, "ln": _ln, "gn": _gn, "in": _in,
         "bn_manual": _hand_written(ManualBatchNorm), "bn_detached": _hand_written(DetachedBatchNorm),
         "syncbn": _syncbn, "pca": _whitening("pca"), "zca": _whitening("zca"), "iternorm": _iternorm}
NORM_KINDS = tuple(NORMS)


def make_norm(
    kind: str,
    num_features: int,
    dims: int,
    *,
    eps: float = 1e-5,
    momentum_pytorch: float = 0.1,
    groups: int = 32,
    affine: bool = True,
    ghost_batch: int = 0,
    momentum_slow: float | None = None,
    sync_impl: str = "manual",
    group_size: int = 16,
    iter_T: int = 5,
) -> nn.Module:
    """Build the normalization for ``num_features`` channels of a ``dims``-D feature map.

    ``dims`` is 0 for a fully connected layer's (N, C) output and 2 for a conv layer's (N, C, H, W).
    ``momentum_pytorch`` is PyTorch's convention: the weight of the new batch in the running average.
    ``ghost_batch`` (examples per normalization group, 0 = whole batch) and ``momentum_slow`` apply to ``bn``.
    ``group_size`` (features per whitening group) applies to ``pca``, ``zca`` and ``iternorm``; ``iter_T``
    (Newton iterations) to ``iternorm``.
    """
    if dims not in (0, 2):
        raise ValueError(f"dims must be 0 (N, C) or 2 (N, C, H, W), got {dims}")
    if kind not in NORMS:
        raise ValueError(f"unknown norm kind {kind!r}; valid kinds: {', '.join(NORM_KINDS)}")
    if (ghost_batch or momentum_slow is not None) and kind != "bn":
        raise ValueError(f"ghost_batch / momentum_slow apply to norm kind 'bn' only, not {kind!r}")
    options = {"eps": eps, "momentum_pytorch": momentum_pytorch, "groups": groups, "affine": affine,
               "ghost_batch": ghost_batch, "momentum_slow": momentum_slow, "sync_impl": sync_impl,
               "group_size": group_size, "iter_T": iter_T}
    return NORMS[kind](num_features, dims, options)


def _largest_divisor_at_most(n: int, cap: int) -> int:
    """GN needs the group count to divide the channels: take the largest divisor of n not above cap."""
    for g in range(min(n, cap), 0, -1):
        if n % g == 0:
            return g
    return 1
