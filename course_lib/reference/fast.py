"""Fast RNN, LSTM and GRU layers: the two tricks production kernels start from, in plain PyTorch.

:func:`course_lib.reference.lstm` does eight small matmuls per step. Here:

1. The input projection ``x_t W_ih^T + b_ih + b_hh`` does not depend on ``h``, so it is
   computed for all L steps at once: one (L*N, H_in) x (H_in, 4H) matmul before the loop.
2. The four gates share one recurrent matmul ``h_{t-1} W_hh^T``: (N, H) x (H, 4H) per step,
   then the (N, 4H) result is split into i, f, g, o.

What is left in the loop is one matmul and a handful of elementwise ops per step. Fused
kernels (oneDNN on CPU, cuDNN on GPU) go further: they fuse the elementwise ops into one
kernel and avoid Python's per-op overhead. Each function has the same contract as its
readable twin in :mod:`course_lib.reference.layers` (``rnn``, ``lstm``, ``gru``).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .layers import LayerWeights, _from_time_major, _to_time_major


def _input_projection(xs: Tensor, w_ih: Tensor, b_ih: Tensor | None) -> Tensor:
    """Trick 1: ``x_t W_ih^T + b_ih`` for every step at once, (L, N, H_in) -> (L, N, G*H)."""
    L, N = xs.shape[:2]
    proj = xs.reshape(L * N, -1) @ w_ih.T
    return (proj if b_ih is None else proj + b_ih).view(L, N, -1)


def _layer_states(hx, k: int, N: int, H: int, xs: Tensor, unbatched: bool):
    if hx is None:
        return xs.new_zeros(N, H)
    return hx[k].unsqueeze(0) if unbatched else hx[k]


def _single_state_layers(step, input, hx, weights, batch_first):
    """Driver for the RNN and GRU, whose state is just h."""
    xs, unbatched = _to_time_major(input, batch_first)
    h_n = []
    for k, (w_ih, w_hh, b_ih, b_hh) in enumerate(weights):
        h = _layer_states(hx, k, xs.shape[1], w_hh.shape[1], xs, unbatched)
        outs = []
        for xp_t in _input_projection(xs, w_ih, b_ih).unbind(0):    # (N, G*H)
            h = step(xp_t, h, w_hh.T, b_hh)
            outs.append(h)
        xs = torch.stack(outs)
        h_n.append(h)
    h_n = torch.stack(h_n)
    return _from_time_major(xs, batch_first, unbatched), (h_n.squeeze(1) if unbatched else h_n)


def _rnn_step(xp_t, h, w_hh_t, b_hh, act):
    hh = h @ w_hh_t if b_hh is None else torch.addmm(b_hh, h, w_hh_t)   # (N, H)
    return act(xp_t + hh)


def _gru_step(xp_t, h, w_hh_t, b_hh):
    hh = h @ w_hh_t if b_hh is None else torch.addmm(b_hh, h, w_hh_t)   # (N, 3H): one matmul
    x_r, x_z, x_n = xp_t.chunk(3, dim=1)
    h_r, h_z, h_n = hh.chunk(3, dim=1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)            # the reset gate after the matmul makes this fusion possible
    return n + z * (h - n)                   # = (1 - z) n + z h


def fast_rnn(input: Tensor, hx: Tensor | None, weights: Sequence[LayerWeights], *,
             batch_first: bool = False, nonlinearity: str = "tanh") -> tuple[Tensor, Tensor]:
    """A stacked Elman RNN like ``nn.RNN``, with the input projection hoisted out of the loop."""
    act = {"tanh": torch.tanh, "relu": torch.relu}[nonlinearity]
    return _single_state_layers(lambda *a: _rnn_step(*a, act), input, hx, weights, batch_first)


def fast_gru(input: Tensor, hx: Tensor | None, weights: Sequence[LayerWeights], *,
             batch_first: bool = False) -> tuple[Tensor, Tensor]:
    """A stacked GRU like ``nn.GRU``, input projection hoisted, three gates in one recurrent matmul."""
    return _single_state_layers(_gru_step, input, hx, weights, batch_first)

__all__ = ["fast_rnn", "fast_lstm", "fast_gru"]


def fast_lstm(input: Tensor, hx: tuple[Tensor, Tensor] | None, weights: Sequence[LayerWeights], *,
              batch_first: bool = False) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """A stacked LSTM like ``nn.LSTM``, with the input projection hoisted and the gates fused."""
    xs, unbatched = _to_time_major(input, batch_first)        # (L, N, H_in)
    L, N = xs.shape[:2]
    h_n, c_n = [], []
    for k, (w_ih, w_hh, b_ih, b_hh) in enumerate(weights):
        H = w_hh.shape[1]
        h = _layer_states(None if hx is None else hx[0], k, N, H, xs, unbatched)
        c = _layer_states(None if hx is None else hx[1], k, N, H, xs, unbatched)
        bias = None
        if b_ih is not None or b_hh is not None:
            bias = (0 if b_ih is None else b_ih) + (0 if b_hh is None else b_hh)   # (4H,)
        x_proj = _input_projection(xs, w_ih, bias)             # (L, N, 4H): trick 1
        w_hh_t = w_hh.T                                       # (H, 4H)
        outs = []
        for xp_t in x_proj.unbind(0):                          # (N, 4H)
            gates = torch.addmm(xp_t, h, w_hh_t)              # (N, 4H): trick 2
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        xs = torch.stack(outs)                                # (L, N, H)
        h_n.append(h)
        c_n.append(c)
    h_n, c_n = torch.stack(h_n), torch.stack(c_n)             # (layers, N, H)
    if unbatched:
        h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)
    return _from_time_major(xs, batch_first, unbatched), (h_n, c_n)
