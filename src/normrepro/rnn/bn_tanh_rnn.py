"""The batch-normalized tanh RNN of Cooijmans et al. 2017 ([C], Sec. 4 and Fig. 1a):

    h_t = tanh(BN(W_h h_{t-1}; gamma_h, 0) + BN(W_x x_t; gamma_x, 0) + b).

[C] use it to show why gamma's initial value matters: a normalized pre-activation has standard deviation
gamma, and a large gamma saturates tanh, whose derivative then shrinks the gradient dL/dh_t as it flows
back through time (vanishing gradients at gamma = 1, healthy flow at gamma = 0.1)."""

from __future__ import annotations

import torch

from normrepro.norms.stepwise_bn import StepwiseBatchNorm
from normrepro.rnn.base import RecurrentCell


class BNTanhRNNCell(RecurrentCell):
    gates_per_unit = 1
    is_lstm = False

    def __init__(self, input_size: int, hidden: int, max_steps: int, **kw):
        super().__init__(input_size, hidden, max_steps, **kw)
        self.bn_x = StepwiseBatchNorm(hidden, max_steps, beta=False, **self.bn_kw)
        self.bn_h = StepwiseBatchNorm(hidden, max_steps, beta=False, **self.bn_kw)

    def input_terms(self, xw: torch.Tensor) -> torch.Tensor:
        return self.bn_x.forward_all(xw) + self.bias

    def recurrent_term(self, hw: torch.Tensor, t: int) -> torch.Tensor:
        return self.bn_h(hw, t)

    def update(self, gates: torch.Tensor, c, t: int):
        return torch.tanh(gates), None
