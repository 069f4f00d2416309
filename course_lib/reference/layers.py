"""Whole sequences: a cell unrolled over time, stacked into layers.

The functions here agree with ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU`` (unidirectional,
no dropout) given the same parameters::

    net = torch.nn.LSTM(3, 5, num_layers=2, batch_first=True)
    output, (h_n, c_n) = lstm(x, None, weights_of(net), batch_first=True)
    # same as net(x)

``weights`` is a list with one ``LayerWeights(w_ih, w_hh, b_ih, b_hh)`` per layer, in
PyTorch's layout (see :mod:`course_lib.reference.cells`). Shapes, with N batch, L length:

    input   (L, N, H_in), or (N, L, H_in) with batch_first, or (L, H_in) unbatched
    output  (L, N, H) / (N, L, H) / (L, H): the top layer's h_t at every step
    h_n     (num_layers, N, H): every layer's last hidden state (and c_n for the LSTM)
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from .cells import gru_cell, lstm_cell, rnn_cell

__all__ = ["LayerWeights", "weights_of", "unroll", "rnn", "lstm", "gru"]


class LayerWeights(NamedTuple):
    """The four parameter tensors of one recurrent layer, PyTorch's layout."""

    w_ih: Tensor            # (G*H, H_in)
    w_hh: Tensor            # (G*H, H)
    b_ih: Tensor | None     # (G*H,)
    b_hh: Tensor | None     # (G*H,)


def weights_of(module: nn.Module) -> list[LayerWeights]:
    """The parameters of an ``nn.RNN``/``nn.LSTM``/``nn.GRU`` or one of their cells, one entry per layer."""
    if isinstance(module, (nn.RNNCell, nn.LSTMCell, nn.GRUCell)):
        return [LayerWeights(module.weight_ih, module.weight_hh, module.bias_ih, module.bias_hh)]
    if not isinstance(module, nn.RNNBase):
        raise TypeError(f"expected an nn.RNN, nn.LSTM, nn.GRU or one of their cells, got {type(module).__name__}")
    if module.bidirectional or getattr(module, "proj_size", 0):
        raise ValueError("the reference layers cover unidirectional layers without proj_size only")
    out = []
    for k in range(module.num_layers):
        get = lambda name: getattr(module, f"{name}_l{k}", None)  # noqa: E731
        out.append(LayerWeights(get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")))
    return out


Cell = Callable[..., object]


def unroll(cell: Cell, xs: Tensor, state, w: Sequence[Tensor | None]) -> tuple[Tensor, object]:
    """Run ``cell`` over time-major ``xs`` (L, N, H_in) from ``state``; weight sharing made literal.

    The same ``w`` is used at every step. Returns the stacked hidden states (L, N, H) and the
    last state (whatever the cell returns: ``h`` or ``(h, c)``).
    """
    hs = []
    for x_t in xs.unbind(0):                 # x_t: (N, H_in)
        state = cell(x_t, state, *w)
        hs.append(state[0] if isinstance(state, tuple) else state)  # h_t: (N, H)
    return torch.stack(hs), state            # (L, N, H)


def _to_time_major(input: Tensor, batch_first: bool) -> tuple[Tensor, bool]:
    if input.dim() not in (2, 3):
        raise ValueError(
            f"expected input of shape (L, N, H_in), (N, L, H_in) or unbatched (L, H_in), got {tuple(input.shape)}")
    if input.dim() == 2:
        return input.unsqueeze(1), True
    return (input.transpose(0, 1) if batch_first else input), False


def _from_time_major(out: Tensor, batch_first: bool, unbatched: bool) -> Tensor:
    if unbatched:
        return out.squeeze(1)
    return out.transpose(0, 1) if batch_first else out


def _stack_layers(cell: Cell, input: Tensor, hx, weights, batch_first: bool, n_state: int):
    """Shared driver for the three layer functions. ``n_state`` is 1 (h) or 2 ((h, c))."""
    xs, unbatched = _to_time_major(input, batch_first)
    if hx is not None:
        states = hx if n_state == 2 else (hx,)
        states = tuple(s.unsqueeze(1) if unbatched else s for s in states)  # (layers, N, H)
        if states[0].shape[0] != len(weights):
            raise ValueError(f"expected an initial state for {len(weights)} layers, got {states[0].shape[0]}")
    finals = []
    for k, w in enumerate(weights):
        state = None if hx is None else (
            tuple(s[k] for s in states) if n_state == 2 else states[0][k])
        xs, state = unroll(cell, xs, state, w)   # the layer's outputs feed the next layer
        finals.append(state if n_state == 2 else (state,))
    output = _from_time_major(xs, batch_first, unbatched)
    last = tuple(torch.stack([f[j] for f in finals]) for j in range(n_state))  # (layers, N, H)
    if unbatched:
        last = tuple(s.squeeze(1) for s in last)
    return output, (last if n_state == 2 else last[0])


def rnn(input: Tensor, hx: Tensor | None, weights: Sequence[LayerWeights], *,
        batch_first: bool = False, nonlinearity: str = "tanh") -> tuple[Tensor, Tensor]:
    """A stacked Elman RNN over a sequence, like ``nn.RNN``. Returns ``(output, h_n)``."""
    cell = lambda x, h, *w: rnn_cell(x, h, *w, nonlinearity=nonlinearity)  # noqa: E731
    return _stack_layers(cell, input, hx, weights, batch_first, n_state=1)


def lstm(input: Tensor, hx: tuple[Tensor, Tensor] | None, weights: Sequence[LayerWeights], *,
         batch_first: bool = False) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """A stacked LSTM over a sequence, like ``nn.LSTM``. Returns ``(output, (h_n, c_n))``."""
    return _stack_layers(lstm_cell, input, hx, weights, batch_first, n_state=2)


def gru(input: Tensor, hx: Tensor | None, weights: Sequence[LayerWeights], *,
        batch_first: bool = False) -> tuple[Tensor, Tensor]:
    """A stacked GRU over a sequence, like ``nn.GRU``. Returns ``(output, h_n)``."""
    return _stack_layers(gru_cell, input, hx, weights, batch_first, n_state=1)
