"""Normalization layers: one registry (``make_norm``) used by every model."""

from normrepro.norms.registry import NORM_KINDS, make_norm

__all__ = ["NORM_KINDS", "make_norm"]
