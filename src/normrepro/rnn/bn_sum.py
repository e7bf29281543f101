"""Laurent et al. 2016 ([L], Sec. 3, Eq. 8's first option), "BN on the sum": the batch-normalized sum of
both terms,

    gates_t = BN(W_h h_{t-1} + W_x x_t) + b,

with batch statistics of step t (and population statistics per step at inference). [L] report that this
form did not train well (the recurrent term is normalized together with the input term, so the repeated
application of BN in the recurrence distorts the hidden-to-hidden dynamics)."""

from __future__ import annotations

import torch

from normrepro.norms.stepwise_bn import StepwiseBatchNorm
from normrepro.rnn.base import RecurrentCell


class BNSumLSTMCell(RecurrentCell):
    def __init__(self, input_size: int, hidden: int, max_steps: int, **kw):
        super().__init__(input_size, hidden, max_steps, **kw)
        self.bn = StepwiseBatchNorm(4 * hidden, max_steps, beta=False, **self.bn_kw)

    def input_terms(self, xw: torch.Tensor) -> torch.Tensor:
        return xw  # the bias goes after the normalization

    def gates(self, x_t: torch.Tensor, h: torch.Tensor, t: int) -> torch.Tensor:
        return self.bn(x_t + self.wh(h), t) + self.bias
