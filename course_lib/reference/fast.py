"""A fast LSTM layer: the two tricks production kernels start from, in plain PyTorch.

:func:`course_lib.reference.lstm` does eight small matmuls per step. Here:

1. The input projection ``x_t W_ih^T + b_ih + b_hh`` does not depend on ``h``, so it is
   computed for all L steps at once: one (L*N, H_in) x (H_in, 4H) matmul before the loop.
2. The four gates share one recurrent matmul ``h_{t-1} W_hh^T``: (N, H) x (H, 4H) per step,
   then the (N, 4H) result is split into i, f, g, o.

What is left in the loop is one matmul and a handful of elementwise ops per step. Fused
kernels (oneDNN on CPU, cuDNN on GPU) go further: they fuse the elementwise ops into one
kernel and avoid Python's per-op overhead. Same contract as :func:`course_lib.reference.lstm`.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .layers import LayerWeights, _from_time_major, _to_time_major

__all__ = ["fast_lstm"]


def fast_lstm(input: Tensor, hx: tuple[Tensor, Tensor] | None, weights: Sequence[LayerWeights], *,
              batch_first: bool = False) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """A stacked LSTM like ``nn.LSTM``, with the input projection hoisted and the gates fused."""
    xs, unbatched = _to_time_major(input, batch_first)        # (L, N, H_in)
    L, N = xs.shape[:2]
    h_n, c_n = [], []
    for k, (w_ih, w_hh, b_ih, b_hh) in enumerate(weights):
        H = w_hh.shape[1]
        if hx is None:
            h = c = xs.new_zeros(N, H)
        else:
            h, c = (s[k].unsqueeze(0) if unbatched else s[k] for s in hx)
        bias = None
        if b_ih is not None or b_hh is not None:
            bias = (0 if b_ih is None else b_ih) + (0 if b_hh is None else b_hh)   # (4H,)
        x_proj = xs.reshape(L * N, -1) @ w_ih.T                # (L*N, 4H): trick 1
        if bias is not None:
            x_proj = x_proj + bias
        w_hh_t = w_hh.T                                       # (H, 4H)
        outs = []
        for xp_t in x_proj.view(L, N, 4 * H).unbind(0):       # (N, 4H)
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
