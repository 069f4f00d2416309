"""Reference implementations: the course's answer key, written to be read.

- :mod:`.cells`      one time step: ``rnn_cell``, ``lstm_cell`` (and ``lstm_gates``), ``gru_cell``
- :mod:`.layers`     cells unrolled over a sequence and stacked: ``rnn``, ``lstm``, ``gru``
- :mod:`.bptt`       backpropagation through time by hand: ``rnn_bptt``, ``lstm_bptt``
- :mod:`.fast`       layers with the tricks fast kernels use: ``fast_rnn``, ``fast_lstm``, ``fast_gru``
- :mod:`.attention`  ``scaled_dot_product_attention``, ``self_attention``
- :mod:`.clipping`   ``clip_by_global_norm``
- :mod:`.params`     ``count_parameters``
"""
from .attention import causal_mask, scaled_dot_product_attention, self_attention
from .bptt import LSTMGrads, LSTMWithManualBackward, RNNGrads, RNNWithManualBackward, lstm_bptt, rnn_bptt
from .cells import gru_cell, lstm_cell, lstm_gates, rnn_cell
from .clipping import clip_by_global_norm, global_norm
from .fast import fast_gru, fast_lstm, fast_rnn
from .layers import LayerWeights, gru, lstm, rnn, unroll, weights_of
from .params import GATE_BLOCKS, count_parameters

__all__ = [
    "rnn_cell", "lstm_cell", "lstm_gates", "gru_cell",
    "LayerWeights", "weights_of", "unroll", "rnn", "lstm", "gru",
    "RNNGrads", "LSTMGrads", "rnn_bptt", "lstm_bptt", "RNNWithManualBackward", "LSTMWithManualBackward",
    "fast_rnn", "fast_lstm", "fast_gru", "causal_mask", "scaled_dot_product_attention", "self_attention",
    "global_norm", "clip_by_global_norm", "GATE_BLOCKS", "count_parameters",
]
