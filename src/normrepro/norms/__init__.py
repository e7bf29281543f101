"""Normalization layers: one registry (``make_norm``) used by every model."""

from torch import nn

from normrepro.norms.manual_bn import BatchNormBase
from normrepro.norms.registry import NORM_KINDS, make_norm

# Every layer that normalizes with batch statistics in training and running averages at test time.
BATCH_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.SyncBatchNorm, BatchNormBase)

__all__ = ["BATCH_NORM_TYPES", "NORM_KINDS", "make_norm"]
