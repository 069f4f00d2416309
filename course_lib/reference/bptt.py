r"""Backpropagation through time, by hand, for a one-layer tanh RNN and an LSTM.

Autograd does this for us in practice; writing it once shows where gradients vanish.
Both functions run the forward pass, then walk back from ``t = L-1`` to ``0`` carrying
``dh`` (and for the LSTM ``dc``), the gradient flowing into the previous state:

.. math::
    \frac{\partial \mathcal{L}}{\partial h_{t-1}}
        = \Big(\frac{\partial h_t}{\partial h_{t-1}}\Big)^{\!\top} \frac{\partial \mathcal{L}}{\partial h_t}
          + \text{(the loss's direct gradient at } h_{t-1}).

Inputs are time-major: ``xs`` (L, N, H_in), ``h0``/``c0`` (N, H), and ``grad_hs`` (L, N, H)
is the gradient of the loss with respect to every step's hidden state ``h_t``. Weights are
in PyTorch's layout (see :mod:`course_lib.reference.cells`).

:class:`RNNWithManualBackward` and :class:`LSTMWithManualBackward` wrap the hand-written
passes as ``torch.autograd.Function`` so that ``torch.autograd.gradcheck`` can compare them
with finite differences.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .cells import affine, lstm_gates

__all__ = [
    "RNNGrads", "LSTMGrads", "rnn_bptt", "lstm_bptt",
    "RNNWithManualBackward", "LSTMWithManualBackward",
]


class RNNGrads(NamedTuple):
    """Gradients of the loss with respect to each input of a one-layer RNN."""

    input: Tensor          # (L, N, H_in)
    h0: Tensor             # (N, H)
    w_ih: Tensor           # (H, H_in)
    w_hh: Tensor           # (H, H)
    b_ih: Tensor | None    # (H,)
    b_hh: Tensor | None    # (H,)


class LSTMGrads(NamedTuple):
    """Gradients of the loss with respect to each input of a one-layer LSTM."""

    input: Tensor          # (L, N, H_in)
    h0: Tensor             # (N, H)
    c0: Tensor             # (N, H)
    w_ih: Tensor           # (4H, H_in)
    w_hh: Tensor           # (4H, H)
    b_ih: Tensor | None    # (4H,)
    b_hh: Tensor | None    # (4H,)


def rnn_bptt(xs: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
             b_hh: Tensor | None, grad_hs: Tensor) -> RNNGrads:
    r"""Gradients of a tanh RNN by backpropagation through time.

    Forward: :math:`a_t = W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}`, :math:`h_t = \tanh(a_t)`.

    Backward, for t = L-1 ... 0, with ``dh`` the total gradient reaching :math:`h_t`:

    .. math::
        da_t &= dh_t \odot (1 - h_t^2)                       && \tanh' \\
        dW_{ih} \mathrel{+}= da_t^\top x_t, \quad dW_{hh} &\mathrel{+}= da_t^\top h_{t-1}, \quad
        db \mathrel{+}= \textstyle\sum_n da_t                  && \text{weights shared over time} \\
        dx_t &= da_t W_{ih}, \qquad dh_{t-1} = da_t W_{hh} + \partial\mathcal{L}/\partial h_{t-1}
    """
    with torch.no_grad():
        hs = [h0]
        for x_t in xs.unbind(0):
            hs.append(torch.tanh(affine(x_t, w_ih, b_ih) + affine(hs[-1], w_hh, b_hh)))  # (N, H)
        dw_ih, dw_hh = torch.zeros_like(w_ih), torch.zeros_like(w_hh)
        db = torch.zeros_like(w_hh[:, 0])                     # (H,)
        dxs = torch.empty_like(xs)                            # (L, N, H_in)
        dh_next = torch.zeros_like(h0)                        # gradient arriving from step t+1
        for t in reversed(range(xs.shape[0])):
            h_t, h_tm1 = hs[t + 1], hs[t]
            dh = grad_hs[t] + dh_next                         # (N, H)
            da = dh * (1 - h_t * h_t)                         # (N, H)
            dw_ih += da.T @ xs[t]
            dw_hh += da.T @ h_tm1
            db += da.sum(0)
            dxs[t] = da @ w_ih                                # (N, H_in)
            dh_next = da @ w_hh                               # (N, H)
    return RNNGrads(dxs, dh_next, dw_ih, dw_hh,
                    None if b_ih is None else db, None if b_hh is None else db.clone())


def lstm_bptt(xs: Tensor, h0: Tensor, c0: Tensor, w_ih: Tensor, w_hh: Tensor,
              b_ih: Tensor | None, b_hh: Tensor | None, grad_hs: Tensor) -> LSTMGrads:
    r"""Gradients of a one-layer LSTM by backpropagation through time.

    With ``dh`` and ``dc`` the total gradients reaching :math:`h_t` and :math:`c_t`:

    .. math::
        do_t &= dh \odot \tanh(c_t), \qquad
        dc \mathrel{+}= dh \odot o_t \odot (1 - \tanh^2 c_t) \\
        di_t &= dc \odot g_t, \quad df_t = dc \odot c_{t-1}, \quad dg_t = dc \odot i_t \\
        dc_{t-1} &= dc \odot f_t                              && \text{the constant error carousel} \\
        da_t &= [di_t\, i_t(1-i_t) \;|\; df_t\, f_t(1-f_t) \;|\; dg_t (1-g_t^2) \;|\; do_t\, o_t(1-o_t)]
              && (N, 4H) \\
        dx_t &= da_t W_{ih}, \qquad dh_{t-1} = da_t W_{hh} + \partial\mathcal{L}/\partial h_{t-1}

    The weight gradients accumulate ``da_t^T x_t`` and ``da_t^T h_{t-1}`` over time.
    """
    with torch.no_grad():
        hs, cs, gates = [h0], [c0], []
        for x_t in xs.unbind(0):
            i, f, g, o = lstm_gates(x_t, hs[-1], w_ih, w_hh, b_ih, b_hh)   # each (N, H)
            cs.append(f * cs[-1] + i * g)
            hs.append(o * torch.tanh(cs[-1]))
            gates.append((i, f, g, o))
        dw_ih, dw_hh = torch.zeros_like(w_ih), torch.zeros_like(w_hh)
        db = torch.zeros_like(w_hh[:, 0])                     # (4H,)
        dxs = torch.empty_like(xs)
        dh_next, dc_next = torch.zeros_like(h0), torch.zeros_like(c0)
        for t in reversed(range(xs.shape[0])):
            i, f, g, o = gates[t]
            c_t, c_tm1, h_tm1 = cs[t + 1], cs[t], hs[t]
            tanh_c = torch.tanh(c_t)
            dh = grad_hs[t] + dh_next                         # (N, H)
            do = dh * tanh_c
            dc = dc_next + dh * o * (1 - tanh_c * tanh_c)     # (N, H)
            di, df, dg = dc * g, dc * c_tm1, dc * i
            da = torch.cat([di * i * (1 - i), df * f * (1 - f),
                            dg * (1 - g * g), do * o * (1 - o)], dim=1)  # (N, 4H)
            dw_ih += da.T @ xs[t]
            dw_hh += da.T @ h_tm1
            db += da.sum(0)
            dxs[t] = da @ w_ih                                # (N, H_in)
            dh_next = da @ w_hh                               # (N, H)
            dc_next = dc * f                                  # (N, H)
    return LSTMGrads(dxs, dh_next, dc_next, dw_ih, dw_hh,
                     None if b_ih is None else db, None if b_hh is None else db.clone())


def _rnn_forward(xs, h0, w_ih, w_hh, b_ih, b_hh) -> Tensor:
    hs, h = [], h0
    for x_t in xs.unbind(0):
        h = torch.tanh(affine(x_t, w_ih, b_ih) + affine(h, w_hh, b_hh))
        hs.append(h)
    return torch.stack(hs)                                    # (L, N, H)


def _lstm_forward(xs, h0, c0, w_ih, w_hh, b_ih, b_hh) -> Tensor:
    hs, h, c = [], h0, c0
    for x_t in xs.unbind(0):
        i, f, g, o = lstm_gates(x_t, h, w_ih, w_hh, b_ih, b_hh)
        c = f * c + i * g
        h = o * torch.tanh(c)
        hs.append(h)
    return torch.stack(hs)                                    # (L, N, H)


class RNNWithManualBackward(torch.autograd.Function):
    """``apply(xs, h0, w_ih, w_hh, b_ih, b_hh) -> hs (L, N, H)``; backward is :func:`rnn_bptt`."""

    @staticmethod
    def forward(ctx, xs, h0, w_ih, w_hh, b_ih, b_hh):
        ctx.save_for_backward(xs, h0, w_ih, w_hh, b_ih, b_hh)
        return _rnn_forward(xs, h0, w_ih, w_hh, b_ih, b_hh)

    @staticmethod
    def backward(ctx, grad_hs):
        return tuple(rnn_bptt(*ctx.saved_tensors, grad_hs))


class LSTMWithManualBackward(torch.autograd.Function):
    """``apply(xs, h0, c0, w_ih, w_hh, b_ih, b_hh) -> hs (L, N, H)``; backward is :func:`lstm_bptt`."""

    @staticmethod
    def forward(ctx, xs, h0, c0, w_ih, w_hh, b_ih, b_hh):
        ctx.save_for_backward(xs, h0, c0, w_ih, w_hh, b_ih, b_hh)
        return _lstm_forward(xs, h0, c0, w_ih, w_hh, b_ih, b_hh)

    @staticmethod
    def backward(ctx, grad_hs):
        return tuple(lstm_bptt(*ctx.saved_tensors, grad_hs))
