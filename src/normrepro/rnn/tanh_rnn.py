"""The plain (Elman) tanh RNN, h_t = tanh(W_h h_{t-1} + W_x x_t + b): the cell of the exploding-gradient
"cliffs" that gradient clipping tames ([S1] Sec. 3.2.2; Pascanu et al. 2013). The shared loop (``base.py``)
supplies W_x, W_h (``recurrent_init``) and b; only the update differs from the LSTM's."""

from __future__ import annotations

import torch

from normrepro.rnn.base import RecurrentCell


class TanhRNNCell(RecurrentCell):
    gates_per_unit = 1
    is_lstm = False

    def update(self, gates: torch.Tensor, c, t: int):
        return torch.tanh(gates), None
