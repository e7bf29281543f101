"""Laurent et al. 2016 ([L], Sec. 3, Eq. 10), BN on the input-to-hidden term only:

    gates_t = W_h h_{t-1} + BN(W_x x_t) + b.

The normalized term does not depend on the recurrence, so it is normalized for all steps at once (each
step with its own statistics). [L]'s finding: faster convergence of the training loss, but no better (or
worse, overfitting) validation results."""

from __future__ import annotations

import torch

from normrepro.norms.stepwise_bn import StepwiseBatchNorm
from normrepro.rnn.base import RecurrentCell


class BNInputLSTMCell(RecurrentCell):
    def __init__(self, input_size: int, hidden: int, max_steps: int, **kw):
        super().__init__(input_size, hidden, max_steps, **kw)
        self.bn_x = StepwiseBatchNorm(4 * hidden, max_steps, beta=False, **self.bn_kw)

    def input_terms(self, xw: torch.Tensor) -> torch.Tensor:
        return self.bn_x.forward_all(xw) + self.bias
