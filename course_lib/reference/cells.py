"""One time step of a plain RNN, an LSTM and a GRU, written to be read.

Each cell follows the calling convention of PyTorch's own functional cells
(``torch._VF.lstm_cell`` and friends), so the weights of ``nn.RNNCell``,
``nn.LSTMCell`` and ``nn.GRUCell`` load straight in::

    cell = torch.nn.LSTMCell(3, 5)
    h, c = lstm_cell(x, (h0, c0), cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)

Symbols used in shape comments throughout ``course_lib``:

    N      batch size
    L      sequence length (number of time steps)
    H_in   size of one input vector x_t
    H      hidden size (size of h_t and c_t)

Weights are stacked gate blocks, PyTorch's layout: ``w_ih`` is ``(G*H, H_in)`` and
``w_hh`` is ``(G*H, H)`` with G = 1 (RNN), 4 (LSTM: i, f, g, o) or 3 (GRU: r, z, n).
A cell given an unbatched input ``(H_in,)`` returns an unbatched state ``(H,)``.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["rnn_cell", "lstm_cell", "lstm_gates", "gru_cell", "affine"]


def affine(x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    """``x W^T + b``: the affine map every gate starts with (b may be None)."""
    out = x @ w.T
    return out if b is None else out + b


def _blocks(t: Tensor | None, n: int) -> tuple:
    """Split stacked gate weights or biases into their ``n`` blocks (Nones stay None)."""
    return (None,) * n if t is None else t.chunk(n, dim=0)


def _batched(x: Tensor) -> tuple[bool, Tensor]:
    """Return (was_unbatched, x with a batch axis)."""
    return (True, x.unsqueeze(0)) if x.dim() == 1 else (False, x)


def rnn_cell(
    input: Tensor,
    hx: Tensor | None,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
    nonlinearity: str = "tanh",
) -> Tensor:
    r"""One step of an Elman RNN.

    .. math::
        h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})

    (``nonlinearity="relu"`` replaces tanh by ReLU.)

    Shapes: ``input`` (N, H_in), ``hx`` (N, H) or None for zeros, ``w_ih`` (H, H_in),
    ``w_hh`` (H, H), biases (H,). Returns ``h_t`` (N, H).
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    unbatched, x = _batched(input)
    h_tm1 = _initial(hx, x, w_hh.shape[1], unbatched)
    act = torch.tanh if nonlinearity == "tanh" else torch.relu
    h_t = act(affine(x, w_ih, b_ih) + affine(h_tm1, w_hh, b_hh))  # (N, H)
    return h_t.squeeze(0) if unbatched else h_t


def lstm_cell(
    input: Tensor,
    hx: tuple[Tensor, Tensor] | None,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    r"""One step of an LSTM (Hochreiter and Schmidhuber 1997, with the forget gate of Gers et al. 2000).

    .. math::
        i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi})      && \text{input gate} \\
        f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf})      && \text{forget gate} \\
        g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg})       && \text{candidate} \\
        o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho})      && \text{output gate} \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t                          && \text{cell state} \\
        h_t &= o_t \odot \tanh(c_t)                                       && \text{hidden state}

    ``w_ih`` stacks ``W_ii | W_if | W_ig | W_io`` into (4H, H_in), ``w_hh`` stacks
    ``W_hi | W_hf | W_hg | W_ho`` into (4H, H), PyTorch's order. ``hx = (h_{t-1}, c_{t-1})``,
    each (N, H), or None for zeros. Returns the tuple ``(h_t, c_t)``, each (N, H).
    """
    unbatched, x = _batched(input)
    H = w_hh.shape[1]
    h_tm1, c_tm1 = (None, None) if hx is None else hx
    h_tm1 = _initial(h_tm1, x, H, unbatched)
    c_tm1 = _initial(c_tm1, x, H, unbatched)

    i_t, f_t, g_t, o_t = lstm_gates(x, h_tm1, w_ih, w_hh, b_ih, b_hh)       # each (N, H)
    c_t = f_t * c_tm1 + i_t * g_t                                            # (N, H)
    h_t = o_t * torch.tanh(c_t)                                              # (N, H)
    if unbatched:
        return h_t.squeeze(0), c_t.squeeze(0)
    return h_t, c_t


def lstm_gates(
    x: Tensor,
    h_tm1: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""The four LSTM gate activations ``(i_t, f_t, g_t, o_t)`` for a batch, each (N, H).

    The first four equations of :func:`lstm_cell`; ``x`` is (N, H_in), ``h_tm1`` is (N, H).
    The book records them to draw gate heat maps.
    """
    W_ii, W_if, W_ig, W_io = _blocks(w_ih, 4)  # each (H, H_in)
    W_hi, W_hf, W_hg, W_ho = _blocks(w_hh, 4)  # each (H, H)
    b_ii, b_if, b_ig, b_io = _blocks(b_ih, 4)  # each (H,)
    b_hi, b_hf, b_hg, b_ho = _blocks(b_hh, 4)
    i_t = torch.sigmoid(affine(x, W_ii, b_ii) + affine(h_tm1, W_hi, b_hi))  # (N, H)
    f_t = torch.sigmoid(affine(x, W_if, b_if) + affine(h_tm1, W_hf, b_hf))  # (N, H)
    g_t = torch.tanh(affine(x, W_ig, b_ig) + affine(h_tm1, W_hg, b_hg))     # (N, H)
    o_t = torch.sigmoid(affine(x, W_io, b_io) + affine(h_tm1, W_ho, b_ho))  # (N, H)
    return i_t, f_t, g_t, o_t


def gru_cell(
    input: Tensor,
    hx: Tensor | None,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> Tensor:
    r"""One step of a GRU (Cho et al. 2014), with PyTorch's (and cuDNN's) reset convention.

    .. math::
        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr})               && \text{reset gate} \\
        z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz})               && \text{update gate} \\
        n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn}))    && \text{candidate} \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    The reset gate multiplies ``W_hn h + b_hn`` *after* the matmul, as in arXiv:1406.1078v1; the
    published paper (v3, EMNLP 2014) applies it before (``W_hn (r ⊙ h)``); Keras calls PyTorch's
    form ``reset_after=True``.
    ``w_ih`` stacks ``W_ir | W_iz | W_in`` (3H, H_in), ``w_hh`` stacks ``W_hr | W_hz | W_hn`` (3H, H).
    ``hx`` is (N, H) or None for zeros. Returns ``h_t`` (N, H).
    """
    unbatched, x = _batched(input)
    h_tm1 = _initial(hx, x, w_hh.shape[1], unbatched)

    W_ir, W_iz, W_in = _blocks(w_ih, 3)  # each (H, H_in)
    W_hr, W_hz, W_hn = _blocks(w_hh, 3)  # each (H, H)
    b_ir, b_iz, b_in = _blocks(b_ih, 3)  # each (H,)
    b_hr, b_hz, b_hn = _blocks(b_hh, 3)

    r_t = torch.sigmoid(affine(x, W_ir, b_ir) + affine(h_tm1, W_hr, b_hr))  # (N, H)
    z_t = torch.sigmoid(affine(x, W_iz, b_iz) + affine(h_tm1, W_hz, b_hz))  # (N, H)
    n_t = torch.tanh(affine(x, W_in, b_in) + r_t * affine(h_tm1, W_hn, b_hn))  # (N, H)
    h_t = (1 - z_t) * n_t + z_t * h_tm1                                      # (N, H)
    return h_t.squeeze(0) if unbatched else h_t


def _initial(state: Tensor | None, x: Tensor, H: int, unbatched: bool) -> Tensor:
    """The previous state with a batch axis; zeros of shape (N, H) when it is None."""
    if state is None:
        return x.new_zeros(x.shape[0], H)
    return state.unsqueeze(0) if unbatched else state
