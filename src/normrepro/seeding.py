"""Separate, reproducible random streams per purpose: changing the data order changes nothing
else, and the same seed on the same machine gives identical metrics."""

from __future__ import annotations

import hashlib

import torch

STREAMS = ("init", "order", "augment", "dropout", "ravine", "saddle", "montecarlo")  # montecarlo: measure/dead_at_init.py


def derive_seed(seed: int, stream: str) -> int:
    """A 31-bit seed for ``stream`` that depends only on (seed, stream)."""
    if stream not in STREAMS:
        raise ValueError(f"unknown random stream {stream!r}; valid: {STREAMS}")
    digest = hashlib.sha256(f"{seed}:{stream}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def generator(seed: int, stream: str, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(derive_seed(seed, stream))
