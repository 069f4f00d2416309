"""Reference implementations: the course's answer key, written to be read.

- :mod:`.cells`     one time step of an RNN, LSTM, GRU (``rnn_cell``, ``lstm_cell``, ``gru_cell``)
- :mod:`.layers`    cells unrolled over a sequence and stacked (``rnn``, ``lstm``, ``gru``)
"""
from .cells import gru_cell, lstm_cell, rnn_cell
from .layers import LayerWeights, gru, lstm, rnn, unroll, weights_of

__all__ = [
    "rnn_cell", "lstm_cell", "gru_cell",
    "LayerWeights", "weights_of", "unroll", "rnn", "lstm", "gru",
]
