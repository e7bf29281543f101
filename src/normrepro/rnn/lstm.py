"""Plain LSTM, written by hand on the shared loop (``base.py``) so that it runs the same code path as the
normalized cells: gates = W_x x_t + W_h h_{t-1} + b (Hochreiter & Schmidhuber 1997; Gers et al. 2000's
forget gate). With the same weights it computes what ``nn.LSTM`` computes (tests/test_rnn_cells.py)."""

from normrepro.rnn.base import RecurrentCell


class LSTMCell(RecurrentCell):
    """The base cell unchanged: no normalization anywhere."""
