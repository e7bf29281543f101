"""Recurrent models around one cell of ``normrepro.rnn``.

- :class:`SequenceClassifier`: sequential MNIST (Le et al. 2015; [C] Sec. 5.1). An image is read as a
  sequence of its pixels in scan-line order, ``pixels_per_step`` at a time (1 = [C]'s T = 784), optionally
  under a fixed random permutation of the pixels (permuted MNIST, "pMNIST"); the class is predicted from the
  last hidden state. ``h0_noise`` > 0 draws the initial hidden state from N(0, h0_noise^2) in training:
  [C]'s fix for the unpermuted task, whose first rows are black in every image, so that at the first steps
  every example has the same hidden state, a batch variance of 0, and BN divides by sqrt(eps).
- :class:`CharLanguageModel`: character-level language modelling ([C] Sec. 5.2, Penn Treebank): one-hot
  characters in, a next-character distribution at every step out; logits are returned as (N, V, T) so that
  ``F.cross_entropy(logits, targets)`` with targets (N, T) is the mean per-character loss.

Both keep the hidden states of the last forward in ``self.hiddens`` when ``keep_hidden`` is set (the
gradient-flow probe of [C] Fig. 1a reads dL/dh_t from them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from normrepro.rnn import make_cell


def _cell(model_cfg, norm_cfg, input_size: int, max_steps: int):
    m = model_cfg
    return make_cell(m.cell, input_size, m.hidden, max_steps, gamma_init=m.gamma_init,
                     forget_bias=m.forget_bias, shared_stats=m.stats_shared, eps=norm_cfg.eps,
                     momentum_pytorch=norm_cfg.momentum_pytorch, recurrent_init=m.recurrent_init)


class _Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.keep_hidden = False
        self.hiddens: list[torch.Tensor] = []

    def _run(self, xs: torch.Tensor) -> list[torch.Tensor]:
        h0 = None
        if self.training and self.h0_noise > 0:
            h0 = torch.randn(xs.shape[1], self.cell.hidden, device=xs.device, dtype=xs.dtype) * self.h0_noise
        hs = self.cell(xs, h0)
        if self.keep_hidden:
            self.hiddens = hs
        return hs


class SequenceClassifier(_Recurrent):
    """(N, C, H, W) images -> (N, classes) logits through a recurrent cell over ``H*W*C / k`` steps."""

    def __init__(self, model_cfg, norm_cfg, input_shape: tuple[int, ...], num_classes: int):
        super().__init__()
        m = model_cfg
        pixels = 1
        for d in input_shape:
            pixels *= d
        if pixels % m.pixels_per_step:
            raise ValueError(f"model.pixels_per_step={m.pixels_per_step} must divide the {pixels} pixels")
        self.k, self.steps, self.h0_noise = m.pixels_per_step, pixels // m.pixels_per_step, m.h0_noise
        if m.permute:  # a true random permutation of the pixel order, the same for every run with this seed
            perm = torch.randperm(pixels, generator=torch.Generator().manual_seed(m.permute_seed))
        else:
            perm = torch.arange(pixels)
        self.register_buffer("perm", perm, persistent=False)
        self.permute = m.permute
        self.cell = _cell(m, norm_cfg, self.k, self.steps)
        self.head = nn.Linear(m.hidden, num_classes)

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        """(N, ...) images -> (T, N, k) inputs."""
        seq = x.reshape(x.shape[0], -1)
        if self.permute:
            seq = seq.index_select(1, self.perm)
        return seq.reshape(x.shape[0], -1, self.k).transpose(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self._run(self.sequence(x))[-1])


class CharLanguageModel(_Recurrent):
    """(N, T) character ids -> (N, V, T) next-character logits."""

    def __init__(self, model_cfg, norm_cfg, input_shape: tuple[int, ...], num_classes: int):
        super().__init__()
        self.vocab, self.h0_noise = num_classes, model_cfg.h0_noise
        self.cell = _cell(model_cfg, norm_cfg, num_classes, input_shape[0])
        self.head = nn.Linear(model_cfg.hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = F.one_hot(x.t(), self.vocab).to(self.head.weight.dtype)  # (T, N, V)
        hs = torch.stack(self._run(xs), 0)  # (T, N, H)
        return self.head(hs).permute(1, 2, 0)
