"""Recurrent cells, one module each, on one shared loop (``base.py``): ``make_cell(kind, input_size, hidden,
max_steps, **options)``.

- ``lstm``        plain LSTM (``lstm.py``), checked against ``nn.LSTM``;
- ``bn_sum``      [L] BN(W_h h + W_x x) + b (``bn_sum.py``);
- ``bn_input``    [L] W_h h + BN(W_x x) + b (``bn_input.py``);
- ``bn_lstm``     [C] BN-LSTM (``bn_lstm.py``);
- ``ln_lstm``     [LN] LN-LSTM (``ln_lstm.py``);
- ``bn_tanh_rnn`` [C] Fig. 1a's BN tanh RNN (``bn_tanh_rnn.py``);
- ``tanh_rnn``    the plain tanh RNN (``tanh_rnn.py``), checked against ``nn.RNN``.
"""

from normrepro.rnn.base import RECURRENT_INITS, RecurrentCell
from normrepro.rnn.bn_input import BNInputLSTMCell
from normrepro.rnn.bn_lstm import BNLSTMCell
from normrepro.rnn.bn_sum import BNSumLSTMCell
from normrepro.rnn.bn_tanh_rnn import BNTanhRNNCell
from normrepro.rnn.ln_lstm import LNLSTMCell
from normrepro.rnn.lstm import LSTMCell
from normrepro.rnn.tanh_rnn import TanhRNNCell

CELLS = {"lstm": LSTMCell, "bn_sum": BNSumLSTMCell, "bn_input": BNInputLSTMCell, "bn_lstm": BNLSTMCell,
         "ln_lstm": LNLSTMCell, "bn_tanh_rnn": BNTanhRNNCell, "tanh_rnn": TanhRNNCell}


def make_cell(kind: str, input_size: int, hidden: int, max_steps: int, **options) -> RecurrentCell:
    if kind not in CELLS:
        raise ValueError(f"unknown cell {kind!r}; valid: {', '.join(CELLS)}")
    return CELLS[kind](input_size, hidden, max_steps, **options)


__all__ = ["CELLS", "RECURRENT_INITS", "RecurrentCell", "make_cell"]
