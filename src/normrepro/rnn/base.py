"""The recurrent loop every cell shares, so the plain and the normalized cells run the same code path.

A cell holds W_x (input-to-hidden), W_h (hidden-to-hidden) and a bias b, all with ``gates`` output rows
(4H for an LSTM, H for a tanh RNN). Its forward, for an input sequence xs of shape (T, N, D):

1. computes W_x x_t for every step in one matrix product and passes it through ``input_terms`` (a cell that
   normalizes this term does so for all steps at once: its statistics do not depend on the recurrence);
2. iterates over the steps with ``unbind`` (indexing ``xs[t]`` in a loop autograd records makes backward
   quadratic in T: docs/stack.md), calling ``gates(x_t, h, t)`` and ``update(gates, c, t)``.

Subclasses override only the hooks: ``input_terms``, ``recurrent_term``, ``gates``, ``cell_norm``.
The plain LSTM update (Hochreiter & Schmidhuber 1997 with a forget gate; gate order i, f, g, o as in
``nn.LSTM``):

    (i, f, g, o) = gates
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t = sigmoid(o) * tanh(cell_norm(c_t))
"""

from __future__ import annotations

import torch
from torch import nn

RECURRENT_INITS = ("identity", "orthogonal", "default")


class RecurrentCell(nn.Module):
    """Base LSTM cell. ``RecurrentCell(input_size, hidden, max_steps, gamma_init=0.1, forget_bias=1.0,
    shared_stats=False, eps=1e-5, momentum_pytorch=0.1, recurrent_init="identity")``.

    ``max_steps`` (the longest training sequence) sizes the per-step statistics of the BN cells;
    ``recurrent_init`` sets W_h: ``identity`` (each gate block = I, [C] Sec. 5's setting after Le et al.
    2015), ``orthogonal`` (each block orthogonal) or ``default`` (``nn.Linear``'s uniform init).
    """

    gates_per_unit = 4
    is_lstm = True

    def __init__(self, input_size: int, hidden: int, max_steps: int, *, gamma_init: float = 0.1,
                 forget_bias: float = 1.0, shared_stats: bool = False, eps: float = 1e-5,
                 momentum_pytorch: float = 0.1, recurrent_init: str = "identity"):
        super().__init__()
        if recurrent_init not in RECURRENT_INITS:
            raise ValueError(f"unknown recurrent_init {recurrent_init!r}; valid: {', '.join(RECURRENT_INITS)}")
        self.input_size, self.hidden, self.max_steps = input_size, hidden, max_steps
        g = self.gates_per_unit * hidden
        self.wx = nn.Linear(input_size, g, bias=False)
        self.wh = nn.Linear(hidden, g, bias=False)
        self.bias = nn.Parameter(torch.zeros(g))
        self.bn_kw = {"gamma_init": gamma_init, "shared": shared_stats, "eps": eps,
                      "momentum_pytorch": momentum_pytorch}
        with torch.no_grad():
            if self.is_lstm:
                self.bias[hidden:2 * hidden].fill_(forget_bias)  # remember by default (Gers et al. 2000)
            for block in self.wh.weight.split(hidden, 0):
                if recurrent_init == "identity":
                    block.copy_(torch.eye(hidden))
                elif recurrent_init == "orthogonal":
                    nn.init.orthogonal_(block)

    # --- hooks (identity in the plain LSTM) --------------------------------------------------------------
    def input_terms(self, xw: torch.Tensor) -> torch.Tensor:
        """(T, N, G) W_x x for all steps -> what ``gates`` receives as x_t (here W_x x_t + b)."""
        return xw + self.bias

    def recurrent_term(self, hw: torch.Tensor, t: int) -> torch.Tensor:
        return hw

    def gates(self, x_t: torch.Tensor, h: torch.Tensor, t: int) -> torch.Tensor:
        return x_t + self.recurrent_term(self.wh(h), t)

    def cell_norm(self, c: torch.Tensor, t: int) -> torch.Tensor:
        return c

    def update(self, gates: torch.Tensor, c: torch.Tensor | None, t: int):
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(self.cell_norm(c, t)), c

    # --- the loop ----------------------------------------------------------------------------------------
    def forward(self, xs: torch.Tensor, h0: torch.Tensor | None = None,
                c0: torch.Tensor | None = None) -> list[torch.Tensor]:
        """xs (T, N, D) -> the hidden states [h_1, ..., h_T], each (N, H)."""
        n = xs.shape[1]
        h = xs.new_zeros(n, self.hidden) if h0 is None else h0
        c = (xs.new_zeros(n, self.hidden) if c0 is None else c0) if self.is_lstm else None
        hs = []
        for t, x_t in enumerate(self.input_terms(self.wx(xs)).unbind(0)):
            h, c = self.update(self.gates(x_t, h, t), c, t)
            hs.append(h)
        for m in self.modules():  # per-step BN statistics: one batched running-average update per sequence
            if hasattr(m, "flush"):
                m.flush()
        return hs
