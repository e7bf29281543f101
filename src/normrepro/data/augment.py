"""Batched CIFAR-style augmentation: random crop from a zero-padded image plus horizontal flip.

This is the standard ResNet-on-CIFAR augmentation (pad 4, random 32x32 crop, flip with p=0.5),
done for a whole batch with one gather instead of a per-image loop. The inputs are already
standardized, so the zero padding equals the per-channel mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Each image of x [N, C, H, W] shifted by a random offset in [-pad, pad] in each direction
    (zeros fill in) and mirrored left-right with probability 0.5; all randomness from `generator`.
    """
    n, c, h, w = x.shape
    # Draw on the generator's device (randint requires it), then move to the data.
    draw = {"generator": generator, "device": generator.device}
    top = torch.randint(0, 2 * pad + 1, (n,), **draw).to(x.device)
    left = torch.randint(0, 2 * pad + 1, (n,), **draw).to(x.device)
    flip = (torch.rand(n, **draw) < 0.5).to(x.device)

    padded = F.pad(x, (pad, pad, pad, pad))
    rows = top[:, None] + torch.arange(h, device=x.device)  # [N, H] rows of the padded image
    cols = torch.arange(w, device=x.device).expand(n, w)
    # Flip by reading columns right to left, so crop and flip are one gather.
    cols = left[:, None] + torch.where(flip[:, None], w - 1 - cols, cols)  # [N, W]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]
