"""Cooijmans et al. 2017 ([C], Recurrent Batch Normalization, Eq. 6-8), the BN-LSTM:

    gates_t = BN(W_h h_{t-1}; gamma_h, 0) + BN(W_x x_t; gamma_x, 0) + b
    c_t     = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t     = sigmoid(o) * tanh(BN(c_t; gamma_c, beta_c))

The two terms are normalized separately (so their relative weight is learned through gamma_h and gamma_x),
with no shift of their own (b is the shift). Every BN keeps separate statistics per time step
(``StepwiseBatchNorm``); gamma starts at 0.1 ([C] Sec. 4, ``gamma_init``), beta at 0, the forget-gate bias
at 1. W_x x_t's normalization does not depend on the recurrence and is done for all steps at once."""

from __future__ import annotations

import torch

from normrepro.norms.stepwise_bn import StepwiseBatchNorm
from normrepro.rnn.base import RecurrentCell


class BNLSTMCell(RecurrentCell):
    def __init__(self, input_size: int, hidden: int, max_steps: int, **kw):
        super().__init__(input_size, hidden, max_steps, **kw)
        self.bn_x = StepwiseBatchNorm(4 * hidden, max_steps, beta=False, **self.bn_kw)
        self.bn_h = StepwiseBatchNorm(4 * hidden, max_steps, beta=False, **self.bn_kw)
        self.bn_c = StepwiseBatchNorm(hidden, max_steps, beta=True, **self.bn_kw)

    def input_terms(self, xw: torch.Tensor) -> torch.Tensor:
        return self.bn_x.forward_all(xw) + self.bias

    def recurrent_term(self, hw: torch.Tensor, t: int) -> torch.Tensor:
        return self.bn_h(hw, t)

    def cell_norm(self, c: torch.Tensor, t: int) -> torch.Tensor:
        return self.bn_c(c, t)
