"""Normalization layers: one registry (``make_norm``) used by every model, and one module (``modes``) that
switches which statistics BN normalizes with."""

from normrepro.norms.modes import BATCH_NORM_TYPES
from normrepro.norms.registry import NORM_KINDS, make_norm

__all__ = ["BATCH_NORM_TYPES", "NORM_KINDS", "make_norm"]
