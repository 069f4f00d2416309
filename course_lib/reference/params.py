r"""Exact parameter counts of recurrent layers.

A layer with G gate blocks (RNN 1, GRU 3, LSTM 4), input size :math:`H_{in}` and hidden
size :math:`H` holds, per block, a weight matrix for the input, one for the hidden state and
two bias vectors (PyTorch keeps ``b_ih`` and ``b_hh`` apart):

.. math::
    P = G\,(H\,H_{in} + H\,H + 2H)

Layers above the first take the layer below's :math:`h_t` as input, so :math:`H_{in} = H`
there. With equal sizes an LSTM has exactly 4 times an RNN's parameters and a GRU 3 times.
"""
from __future__ import annotations

__all__ = ["GATE_BLOCKS", "count_parameters"]

GATE_BLOCKS = {"rnn": 1, "gru": 3, "lstm": 4}


def count_parameters(kind: str, input_size: int, hidden_size: int, num_layers: int = 1,
                     bias: bool = True) -> int:
    """Number of parameters of ``nn.RNN``/``nn.GRU``/``nn.LSTM`` with these sizes."""
    if kind not in GATE_BLOCKS:
        raise ValueError(f"kind must be one of {sorted(GATE_BLOCKS)}, got {kind!r}")
    if min(input_size, hidden_size, num_layers) < 1:
        raise ValueError("input_size, hidden_size and num_layers must all be at least 1")
    G, H = GATE_BLOCKS[kind], hidden_size
    total = 0
    for layer in range(num_layers):
        H_in = input_size if layer == 0 else H
        total += G * (H * H_in + H * H + (2 * H if bias else 0))
    return total
