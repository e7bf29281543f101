"""Ba et al. 2016 ([LN], Layer Normalization, Sec. 3.1 and Eq. 20-22 of its appendix), the LN-LSTM:

    gates_t = LN(W_h h_{t-1}; alpha_h) + LN(W_x x_t; alpha_x) + b
    h_t     = sigmoid(o) * tanh(LN(c_t; alpha_c, beta_c)),

LN(z; alpha, beta) = alpha * (z - mean(z)) / sqrt(var(z) + eps) + beta with the mean and variance over
the units of one example (``torch.nn.functional.layer_norm``): no batch statistics, nothing to keep for
inference, the same computation at every step and batch size. The gains start at ``gamma_init`` like the
BN cells' (one knob for every normalized cell)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from normrepro.rnn.base import RecurrentCell


class LNLSTMCell(RecurrentCell):
    def __init__(self, input_size: int, hidden: int, max_steps: int, **kw):
        super().__init__(input_size, hidden, max_steps, **kw)
        g, gamma = 4 * hidden, self.bn_kw["gamma_init"]
        self.eps = self.bn_kw["eps"]
        self.alpha_x = nn.Parameter(torch.full((g,), gamma))
        self.alpha_h = nn.Parameter(torch.full((g,), gamma))
        self.alpha_c = nn.Parameter(torch.full((hidden,), gamma))
        self.beta_c = nn.Parameter(torch.zeros(hidden))

    def input_terms(self, xw: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(xw, xw.shape[-1:], self.alpha_x, None, self.eps) + self.bias

    def recurrent_term(self, hw: torch.Tensor, t: int) -> torch.Tensor:
        return F.layer_norm(hw, hw.shape[-1:], self.alpha_h, None, self.eps)

    def cell_norm(self, c: torch.Tensor, t: int) -> torch.Tensor:
        return F.layer_norm(c, c.shape[-1:], self.alpha_c, self.beta_c, self.eps)
