"""A catalogue of the mistakes students make, each computed so that a checker can recognise it.

Every entry is a :class:`~course_lib.checkers._engine.Mistake`: a label naming the mistake, a hint
saying what to do instead, and a function with the exercise's own signature that returns what
the mistaken code returns. A checker runs the catalogue on the inputs where the student's answer
went wrong and names the entry the answer matches.

The mistaken variants are written from a few small, switchable implementations (one per
architecture), independent of :mod:`course_lib.reference`; with every switch at its default each
one is the correct computation, which the tests confirm against ``torch.nn``.

Tuples of catalogue entries, by exercise: ``RNN_CELL``, ``LSTM_CELL``, ``GRU_CELL``,
``RNN_LAYER``, ``LSTM_LAYER``, ``GRU_LAYER``, ``RNN_BACKWARD``, ``LSTM_BACKWARD``,
``ATTENTION``, ``CLIP``.
"""
from __future__ import annotations

import functools
import itertools
import math
from typing import Callable

import torch
from torch import Tensor

from ._engine import Mistake

__all__ = [
    "rnn_variant", "lstm_variant", "gru_variant", "layer_variant", "rnn_bptt_variant",
    "lstm_bptt_variant", "attention_variant", "clip_variant",
    "RNN_CELL", "LSTM_CELL", "GRU_CELL", "RNN_LAYER", "LSTM_LAYER", "GRU_LAYER",
    "RNN_BACKWARD", "LSTM_BACKWARD", "ATTENTION", "CLIP",
]

sigmoid, tanh = torch.sigmoid, torch.tanh


def _lin(x: Tensor, W: Tensor, b: Tensor | None, transposed: bool) -> Tensor:
    """``x W^T + b``, or the mistaken ``x W + b`` when ``transposed``."""
    out = x @ (W if transposed else W.T)
    return out if b is None else out + b


# ----------------------------------------------------------------------------- one step, switchable

def rnn_variant(input, hx, w_ih, w_hh, b_ih, b_hh, *, act: Callable = tanh, use_b_ih=True, use_b_hh=True,
                t_ih=False, t_hh=False, swap_w=False, ignore_h=False) -> Tensor:
    """h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), with switches for the mistakes."""
    if swap_w:
        w_ih, w_hh = w_hh, w_ih
    rec = 0 if ignore_h else _lin(hx, w_hh, None, t_hh)
    return act(_lin(input, w_ih, b_ih if use_b_ih else None, t_ih) + rec + (b_hh if use_b_hh else 0))


def lstm_variant(input, hx, w_ih, w_hh, b_ih, b_hh, *, order="ifgo", gate_act=sigmoid, cand_act=tanh,
                 forget="f", use_b_ih=True, use_b_hh=True, t_ih=False, t_hh=False, swap_w=False,
                 h_of_c=tanh, hx_as_ch=False, return_ch=False) -> tuple[Tensor, Tensor]:
    """One LSTM step, ``c_t = f ⊙ c_{t-1} + i ⊙ g``, ``h_t = o ⊙ tanh(c_t)``, with switches for the mistakes.

    ``order`` is the gate order in which the code *reads* the stacked blocks (PyTorch's is "ifgo").
    """
    h, c = hx
    if hx_as_ch:
        c, h = hx
    if swap_w:
        w_ih, w_hh = w_hh, w_ih
    b_i = b_ih.chunk(4) if use_b_ih else (None,) * 4
    b_h = b_hh.chunk(4) if use_b_hh else (None,) * 4
    pre = [_lin(input, Wi, bi, t_ih) + _lin(h, Wh, bh, t_hh)
           for Wi, Wh, bi, bh in zip(w_ih.chunk(4), w_hh.chunk(4), b_i, b_h)]
    a = dict(zip(order, pre))                                     # gate name -> pre-activation
    i, f, o = gate_act(a["i"]), gate_act(a["f"]), gate_act(a["o"])
    g = cand_act(a["g"])
    keep = {"f": f * c, "1-f": (1 - f) * c, "none": 0}[forget]
    c_t = keep + i * g
    h_t = o * h_of_c(c_t)
    return (c_t, h_t) if return_ch else (h_t, c_t)


def gru_variant(input, hx, w_ih, w_hh, b_ih, b_hh, *, order="rzn", cand_act=tanh, update="std",
                reset="after", use_b_ih=True, use_b_hh=True, t_ih=False, t_hh=False, swap_w=False) -> Tensor:
    """One GRU step, ``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))``, ``h_t = (1 - z) ⊙ n + z ⊙ h``
    (PyTorch's convention), with switches for the mistakes."""
    h = hx
    if swap_w:
        w_ih, w_hh = w_hh, w_ih
    b_i = b_ih.chunk(3) if use_b_ih else (None,) * 3
    b_h = b_hh.chunk(3) if use_b_hh else (None,) * 3
    xi = dict(zip(order, [_lin(input, W, b, t_ih) for W, b in zip(w_ih.chunk(3), b_i)]))
    Wh = dict(zip(order, w_hh.chunk(3)))
    bh = dict(zip(order, b_h))
    r = sigmoid(xi["r"] + _lin(h, Wh["r"], bh["r"], t_hh))
    z = sigmoid(xi["z"] + _lin(h, Wh["z"], bh["z"], t_hh))
    b_hn = 0 if bh["n"] is None else bh["n"]
    rec = {
        "after": lambda: r * _lin(h, Wh["n"], bh["n"], t_hh),
        "before": lambda: _lin(r * h, Wh["n"], bh["n"], t_hh),
        "bias_outside": lambda: r * _lin(h, Wh["n"], None, t_hh) + b_hn,
        "none": lambda: _lin(h, Wh["n"], bh["n"], t_hh),
    }[reset]()
    n = cand_act(xi["n"] + rec)
    return (1 - z) * n + z * h if update == "std" else z * n + (1 - z) * h


# ----------------------------------------------------------------------------- a whole sequence

def layer_variant(xs, hx, w_ih, w_hh, b_ih, b_hh, *, cell: Callable, lstm: bool, carry_h="carry",
                  carry_c="carry", output_c=False, shift_output=False, h_n_first=False, return_cn_hn=False,
                  start="given", read="t", order="forward", stack="time"):
    """Unroll ``cell`` over time-major ``xs`` (L, N, H_in) like the layer exercises do.

    ``carry_h``/``carry_c``: "carry" (correct), "init" (every step restarts from h0/c0) or
    "zeros" (every step restarts from zeros). ``start``: "given" (correct), "zeros" (the given
    initial state is ignored), "h_zeros"/"c_zeros" (only h0/only c0 ignored). ``read``: which
    input step t reads, "t" (correct), "first" (xs[0] every time) or "last" (xs[-1] every time).
    ``order``: "forward" (correct), "backward" (the loop runs from t = L-1 down to 0 and output is
    stacked in that order) or "backward_flipped" (the same, output put back in time order).
    ``stack``: "time" (correct, ``torch.stack(hs)``) or "batch_reshape" (``torch.stack(hs, dim=1)``
    reshaped to (L, N, H); ``torch.cat(hs, dim=1)`` holds the same numbers in the same order).
    """
    L, N, H = xs.shape[0], xs.shape[1], w_hh.shape[1]
    zeros = xs.new_zeros(N, H)
    if lstm:
        h0, c0 = (zeros, zeros) if hx is None else hx
    else:
        h0, c0 = (zeros if hx is None else hx), zeros
    h0 = zeros if start in ("zeros", "h_zeros") else h0
    c0 = zeros if start in ("zeros", "c_zeros") else c0
    begin = {"carry": None, "init": (h0, c0), "zeros": (zeros, zeros)}
    h, c = h0, c0
    hs, cs, firsts = [], [], None
    steps = range(L) if order == "forward" else range(L - 1, -1, -1)
    for t in steps:
        x_t = xs[{"t": t, "first": 0, "last": L - 1}[read]]
        h_in = h if carry_h == "carry" else begin[carry_h][0]
        c_in = c if carry_c == "carry" else begin[carry_c][1]
        if lstm:
            h, c = cell(x_t, (h_in, c_in), w_ih, w_hh, b_ih, b_hh)
        else:
            h = cell(x_t, h_in, w_ih, w_hh, b_ih, b_hh)
        hs.append(h)
        cs.append(c)
        firsts = firsts or (h, c)
    seq = cs if output_c else hs
    seq = [h0] + seq[:-1] if shift_output else seq
    seq = seq[::-1] if order == "backward_flipped" else seq
    output = {"time": lambda: torch.stack(seq),                                   # (L, N, H)
              "batch_reshape": lambda: torch.stack(seq, dim=1).reshape(L, N, H)}[stack]()
    h_n, c_n = firsts if h_n_first else (h, c)
    if not lstm:
        return output, h_n
    return output, ((c_n, h_n) if return_cn_hn else (h_n, c_n))


# ----------------------------------------------------------------------------- BPTT, switchable

def _acc_steps(L: int, accumulate: str) -> set[int]:
    return {"all": set(range(L)), "first": {0}, "last": {L - 1}}[accumulate]


def rnn_bptt_variant(xs, h0, w_ih, w_hh, b_ih, b_hh, grad_hs, *, accumulate="all", later=True,
                     tanh_grad=True, t_back=False, h_t_for_prev=False):
    """Gradients (xs, h0, w_ih, w_hh, b_ih, b_hh) of sum(hs * grad_hs) for a tanh RNN, by hand."""
    L = xs.shape[0]
    hs = [h0]
    for x_t in xs.unbind(0):
        hs.append(torch.tanh(x_t @ w_ih.T + b_ih + hs[-1] @ w_hh.T + b_hh))
    dw_ih, dw_hh, db = torch.zeros_like(w_ih), torch.zeros_like(w_hh), torch.zeros_like(b_ih)
    dxs, dh_next = torch.zeros_like(xs), torch.zeros_like(h0)
    steps = _acc_steps(L, accumulate)
    for t in reversed(range(L)):
        dh = grad_hs[t] + (dh_next if later else 0)
        da = dh * (1 - hs[t + 1] ** 2) if tanh_grad else dh
        if t in steps:
            dw_ih = dw_ih + da.T @ xs[t]
            dw_hh = dw_hh + da.T @ (hs[t + 1] if h_t_for_prev else hs[t])
            db = db + da.sum(0)
        dxs[t] = da @ w_ih
        dh_next = da @ (w_hh.T if t_back else w_hh)
    return dxs, dh_next, dw_ih, dw_hh, db, db.clone()


def lstm_bptt_variant(xs, h0, c0, w_ih, w_hh, b_ih, b_hh, grad_hs, *, accumulate="all", later_h=True,
                      later_c=True, tanh_grad=True, forget_carry=True):
    """Gradients (xs, h0, c0, w_ih, w_hh, b_ih, b_hh) of sum(hs * grad_hs) for an LSTM, by hand."""
    L = xs.shape[0]
    hs, cs, gates = [h0], [c0], []
    for x_t in xs.unbind(0):
        a = (x_t @ w_ih.T + b_ih + hs[-1] @ w_hh.T + b_hh).chunk(4, dim=1)
        i, f, g, o = sigmoid(a[0]), sigmoid(a[1]), tanh(a[2]), sigmoid(a[3])
        cs.append(f * cs[-1] + i * g)
        hs.append(o * tanh(cs[-1]))
        gates.append((i, f, g, o))
    dw_ih, dw_hh, db = torch.zeros_like(w_ih), torch.zeros_like(w_hh), torch.zeros_like(b_ih)
    dxs, dh_next, dc_next = torch.zeros_like(xs), torch.zeros_like(h0), torch.zeros_like(c0)
    steps = _acc_steps(L, accumulate)
    for t in reversed(range(L)):
        i, f, g, o = gates[t]
        tc = tanh(cs[t + 1])
        dh = grad_hs[t] + (dh_next if later_h else 0)
        dc = (dc_next if later_c else 0) + dh * o * ((1 - tc ** 2) if tanh_grad else 1)
        da = torch.cat([dc * g * i * (1 - i), dc * cs[t] * f * (1 - f), dc * i * (1 - g ** 2),
                        dh * tc * o * (1 - o)], dim=1)               # (N, 4H)
        if t in steps:
            dw_ih = dw_ih + da.T @ xs[t]
            dw_hh = dw_hh + da.T @ hs[t]
            db = db + da.sum(0)
        dxs[t] = da @ w_ih
        dh_next = da @ w_hh
        dc_next = dc * f if forget_carry else dc
    return dxs, dh_next, dc_next, dw_ih, dw_hh, db, db.clone()


# ----------------------------------------------------------------------------- attention, clipping

def attention_variant(q, k, v, causal=False, *, scale="sqrt", softmax_dim=-1, mask="before", softmax=True):
    """softmax(q k^T / sqrt(d_k) + M) v, with switches for the mistakes."""
    d_k, d_v = q.shape[-1], v.shape[-1]
    s = q @ k.transpose(-2, -1)
    s = {"sqrt": s / math.sqrt(d_k), "none": s, "dk": s / d_k, "mul": s * math.sqrt(d_k),
         "dv": s / math.sqrt(d_v)}[scale]
    L, S = s.shape[-2], s.shape[-1]
    future = torch.ones(L, S, dtype=torch.bool).triu(1)           # True where key s > query t
    if causal and mask == "before":
        s = s.masked_fill(future, float("-inf"))
    elif causal and mask == "inverted":
        s = s.masked_fill(torch.ones(L, S, dtype=torch.bool).tril(-1), float("-inf"))
    elif causal and mask == "zero":
        s = s.masked_fill(future, 0.0)
    w = s.softmax(dim=softmax_dim) if softmax else s
    if causal and mask == "after":
        w = w.masked_fill(future, 0.0)
    return w @ v


def clip_variant(grads, max_norm, *, norm="global", rule="scale"):
    """Gradient clipping with switches: ``norm`` in global | sum | squared, ``rule`` in scale |
    per_tensor | clamp | always."""
    if rule == "clamp":
        return [g.clamp(-max_norm, max_norm) for g in grads]
    if rule == "per_tensor":
        return [g * min(1.0, max_norm / (float(g.norm()) + 1e-6)) for g in grads]
    norms = [float(g.norm()) for g in grads]
    total = {"global": math.sqrt(sum(n * n for n in norms)), "sum": sum(norms),
             "squared": sum(n * n for n in norms)}[norm]
    scale = max_norm / (total + 1e-6)
    return [g * (scale if rule == "always" else min(1.0, scale)) for g in grads]


# ----------------------------------------------------------------------------- the catalogues

def _m(label: str, hint: str, fn: Callable, **switches) -> Mistake:
    return Mistake(label, hint, functools.partial(fn, **switches))


_GATE_NAME = {"i": "input gate", "f": "forget gate", "g": "candidate g", "o": "output gate",
              "r": "reset gate", "z": "update gate", "n": "candidate n"}


def _swap_label(a: str, b: str) -> str:
    na, nb = _GATE_NAME[a], _GATE_NAME[b]
    if na.endswith(" gate") and nb.endswith(" gate"):
        return f"the {na[:-5]} and {nb[:-5]} gates look swapped"
    return f"the {na} and the {nb} look swapped"


def _swapped(order: str, a: str, b: str) -> str:
    return order.translate(str.maketrans(a + b, b + a))


_LSTM_ORDER = ("w_ih and w_hh stack the gate blocks as i | f | g | o: rows 0:H belong to the input gate, "
               "H:2H to the forget gate, 2H:3H to the candidate g and 3H:4H to the output gate.")
_GRU_ORDER = ("w_ih and w_hh stack the gate blocks as r | z | n: rows 0:H belong to the reset gate, "
              "H:2H to the update gate and 2H:3H to the candidate n.")
_T_HH = ("In the row-vector convention the recurrent term is h_{t-1} @ W.T for each (H, H) block W of w_hh "
         "(or h_{t-1} @ w_hh.T for all gates at once).")
_T_IH = "The input term is x_t @ W.T, where W has shape (H, H_in): multiply by the transpose."
_SWAP_W = "w_ih multiplies the input x_t and w_hh the previous hidden state h_{t-1}."
_NO_B = "Both biases enter every pre-activation: x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh."


def _common(variant: Callable) -> list[Mistake]:
    return [
        _m("the bias b_ih is missing", _NO_B, variant, use_b_ih=False),
        _m("the bias b_hh is missing", _NO_B, variant, use_b_hh=False),
        _m("both biases b_ih and b_hh are missing", _NO_B, variant, use_b_ih=False, use_b_hh=False),
        _m("w_hh looks transposed", _T_HH, variant, t_hh=True),
        _m("w_ih looks transposed", _T_IH, variant, t_ih=True),
        _m("w_ih and w_hh look swapped", _SWAP_W, variant, swap_w=True),
    ]


RNN_CELL: tuple[Mistake, ...] = (
    _m("relu is used instead of tanh", "The Elman RNN of this course squashes with tanh: h_t = tanh(...).",
       rnn_variant, act=torch.relu),
    _m("sigmoid is used instead of tanh", "The Elman RNN squashes with tanh, whose outputs lie in (-1, 1).",
       rnn_variant, act=sigmoid),
    _m("the tanh nonlinearity is missing",
       "Apply tanh to the sum: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh).",
       rnn_variant, act=lambda a: a),
    _m("the previous hidden state h_{t-1} is ignored",
       "Add the recurrent term h_{t-1} W_hh^T: without it the network has no memory.",
       rnn_variant, ignore_h=True),
    *_common(rnn_variant),
)

_LSTM_SWAPS = tuple(
    _m(_swap_label(a, b), _LSTM_ORDER, lstm_variant, order=_swapped("ifgo", a, b))
    for a, b in itertools.combinations("ifgo", 2))

LSTM_CELL: tuple[Mistake, ...] = (
    *_LSTM_SWAPS,
    _m("sigmoid and tanh look swapped (the candidate g goes through sigmoid and the gates i, f, o through tanh)",
       "Gates are sigmoids (values in (0, 1)); the candidate g and the output squashing use tanh.",
       lstm_variant, gate_act=tanh, cand_act=sigmoid),
    _m("the candidate g goes through sigmoid instead of tanh",
       "g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg): the candidate may be negative.",
       lstm_variant, cand_act=sigmoid),
    _m("the gates i, f, o go through tanh instead of sigmoid",
       "Gates are sigmoids, so each lies in (0, 1) and acts as a soft switch.",
       lstm_variant, gate_act=tanh),
    _m("the forget gate looks inverted: (1 - f) multiplies c_{t-1}",
       "c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t: f itself says how much of the old cell state is kept.",
       lstm_variant, forget="1-f"),
    _m("the term f ⊙ c_{t-1} is missing (c_t = i ⊙ g)",
       "c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t: the forget gate scales the previous cell state, which is carried on.",
       lstm_variant, forget="none"),
    _m("h_t is computed as o ⊙ c_t: the tanh is missing",
       "h_t = o_t ⊙ tanh(c_t): squash the cell state before the output gate scales it.",
       lstm_variant, h_of_c=lambda c: c),
    _m("h and c are returned in the wrong order: (c, h) instead of (h, c)",
       "Return the tuple (h_t, c_t), hidden state first, as torch.nn.LSTMCell does.",
       lstm_variant, return_ch=True),
    _m("hx is unpacked in the wrong order: it is (h, c), not (c, h)",
       "Read the state as `h_prev, c_prev = hx`.",
       lstm_variant, hx_as_ch=True),
    *_common(lstm_variant),
)

_GRU_SWAPS = tuple(
    _m(_swap_label(a, b), _GRU_ORDER, gru_variant, order=_swapped("rzn", a, b))
    for a, b in itertools.combinations("rzn", 2))

GRU_CELL: tuple[Mistake, ...] = (
    *_GRU_SWAPS,
    _m("the update gate is used the other way round: h_t = z ⊙ n + (1 - z) ⊙ h_{t-1}",
       "PyTorch's GRU keeps z ⊙ h_{t-1} and takes (1 - z) ⊙ n: h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}.",
       gru_variant, update="flipped"),
    _m("the reset gate is applied before the matmul, W_hn (r ⊙ h_{t-1}) (the form of the published GRU paper, arXiv 1406.1078v3, and "
       "Keras's reset_after=False)",
       "This course follows PyTorch (and Keras's default reset_after=True): "
       "n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn)).",
       gru_variant, reset="before"),
    _m("the reset gate multiplies W_hn h_{t-1} but not the bias b_hn",
       "The reset gate multiplies the whole recurrent term, bias included: r_t ⊙ (W_hn h_{t-1} + b_hn).",
       gru_variant, reset="bias_outside"),
    _m("the reset gate is missing from the candidate",
       "n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn)).",
       gru_variant, reset="none"),
    _m("the candidate n goes through sigmoid instead of tanh",
       "n_t = tanh(...): the candidate may be negative; only r and z are sigmoids.",
       gru_variant, cand_act=sigmoid),
    *_common(gru_variant),
)


def _lift(cell_mistakes, lstm: bool) -> tuple[Mistake, ...]:
    """A layer that unrolls a mistaken cell makes the cell's mistake."""
    return tuple(Mistake(m.label, m.hint, functools.partial(layer_variant, cell=m.fn, lstm=lstm))
                 for m in cell_mistakes)


_CARRY = "The state after step t is the state the cell receives at step t+1."
_H_N = "h_n is the hidden state after the last step, the same tensor as output[-1]."
_START = ("Start the loop from the state you are given (h0, or hx = (h0, c0) for the LSTM) and use zeros only "
          "when it is None.")
_READ = "Step t reads the input xs[t]: loop `for x_t in xs:` or index xs[t] with the loop's own t."
_ORDER_T = ("A layer reads the sequence forwards, t = 0, 1, ..., L-1: output[t] is the state after reading xs[0] "
            "... xs[t], and h_n the state after xs[L-1].")
_STACK = ("Collect h_t in a list and use torch.stack(hs) (dim=0, time first): reshape and view never move data "
          "between axes, they only relabel it.")
_SHIFT = "output[t] is h_t, the state after reading x_t, for t = 0 ... L-1; h0 itself is not part of output."


def _layer(cell, lstm: bool) -> tuple[Mistake, ...]:
    lv = functools.partial(layer_variant, cell=cell, lstm=lstm)
    out = [
        Mistake("the hidden state h is not carried from one step to the next: every step starts again from h0",
                _CARRY, functools.partial(lv, carry_h="init")),
        Mistake("the hidden state h is not carried from one step to the next: every step starts again from zeros"
                + (", as if the previous hidden state h_{t-1} were ignored" if cell is rnn_variant else ""),
                _CARRY, functools.partial(lv, carry_h="zeros")),
        Mistake("h_n is the state after the first step, not after the last", _H_N,
                functools.partial(lv, h_n_first=True)),
        Mistake("output is shifted by one step: it starts with h0 and misses the last step", _SHIFT,
                functools.partial(lv, shift_output=True)),
    ]
    start = "h0 and c0 are" if lstm else "h0 is"
    out += [
        Mistake(f"the given initial state is ignored: the loop starts from zeros even when {start} given",
                _START, functools.partial(lv, start="zeros")),
        Mistake("every step reads the same input xs[0]: the time index is not advanced", _READ,
                functools.partial(lv, read="first")),
        Mistake("every step reads the same input xs[-1] (the last step): the time index is not advanced", _READ,
                functools.partial(lv, read="last")),
        Mistake("the sequence is read backwards, from xs[L-1] down to xs[0]", _ORDER_T,
                functools.partial(lv, order="backward")),
        Mistake("the sequence is read backwards, from xs[L-1] down to xs[0] (output was then put back in time "
                "order, but each state has seen the wrong inputs)", _ORDER_T,
                functools.partial(lv, order="backward_flipped")),
        Mistake("output is stacked along the wrong axis: the states were stacked after the batch axis "
                "(torch.stack(hs, dim=1), or torch.cat(hs, dim=1)) and then reshaped to (L, N, H), which mixes "
                "time steps and samples", _STACK, functools.partial(lv, stack="batch_reshape")),
    ]
    if lstm:
        out += [
            Mistake("the initial hidden state h0 is ignored: the loop starts from h = 0 even when hx is given",
                    _START, functools.partial(lv, start="h_zeros")),
            Mistake("the initial cell state c0 is ignored: the loop starts from c = 0 even when hx is given",
                    _START, functools.partial(lv, start="c_zeros")),
            Mistake("the cell state c is not carried from one step to the next: every step starts again from c0",
                    _CARRY, functools.partial(lv, carry_c="init")),
            Mistake("the cell state c is not carried from one step to the next: every step starts again from zeros, "
                    "as if the term f ⊙ c_{t-1} were missing", _CARRY, functools.partial(lv, carry_c="zeros")),
            Mistake("neither h nor the cell state c is carried from one step to the next: every step starts "
                    "again from (h0, c0)", _CARRY, functools.partial(lv, carry_h="init", carry_c="init")),
            Mistake("output holds the cell states c_t instead of the hidden states h_t",
                    "output stacks h_t; the cell state c is internal and only c_n is returned.",
                    functools.partial(lv, output_c=True)),
            Mistake("the final state is returned as (c_n, h_n) instead of (h_n, c_n)",
                    "Return (output, (h_n, c_n)), hidden state first, as torch.nn.LSTM does.",
                    functools.partial(lv, return_cn_hn=True)),
        ]
    return tuple(out)


RNN_LAYER = _layer(rnn_variant, False) + _lift(RNN_CELL, False)
LSTM_LAYER = _layer(lstm_variant, True) + _lift(LSTM_CELL, True)
GRU_LAYER = _layer(gru_variant, False) + _lift(GRU_CELL, False)

_ACC = ("w_ih, w_hh and the biases are shared by every step, so their gradients are sums over all time "
        "steps: start them at zero before the loop and add (+=) each step's contribution.")
_LATER = ("dL/dh_t has two parts: grad_hs[t] from the loss at step t, plus what flows back from step t+1 "
          "(dh_next). Add them before going through the tanh derivative.")


def _backward_common(variant, **later) -> list[Mistake]:
    return [
        _m("the gradient is not accumulated over time steps: it holds only the contribution of step t=0 "
           "(the last one the backward loop visits)", _ACC, variant, accumulate="first"),
        _m("the gradient is not accumulated over time steps: it holds only the contribution of the last step",
           _ACC, variant, accumulate="last"),
        _m("the gradient that flows into h_{t-1} from later steps is forgotten", _LATER, variant, **later),
    ]


RNN_BACKWARD: tuple[Mistake, ...] = (
    *_backward_common(rnn_bptt_variant, later=False),
    _m("the tanh derivative (1 - h_t²) is missing", "da_t = dh_t ⊙ (1 - h_t²), since h_t = tanh(a_t).",
       rnn_bptt_variant, tanh_grad=False),
    _m("the gradient sent back to h_{t-1} uses w_hh transposed: dh_{t-1} = da_t W_hh^T",
       "With rows as samples the forward pass is h_{t-1} @ w_hh.T, so the gradient flows back as da_t @ w_hh.",
       rnn_bptt_variant, t_back=True),
    _m("dL/dw_hh pairs da_t with h_t instead of h_{t-1}",
       "dW_hh = Σ_t da_tᵀ h_{t-1}: the state that was multiplied by w_hh at step t is the previous one (h0 at t=0).",
       rnn_bptt_variant, h_t_for_prev=True),
)

LSTM_BACKWARD: tuple[Mistake, ...] = (
    *_backward_common(lstm_bptt_variant, later_h=False),
    _m("the gradient that flows into c_{t-1} from later steps is forgotten",
       "dL/dc_t = dc_next + dh_t ⊙ o_t ⊙ (1 - tanh²(c_t)), where dc_next = dc_{t+1} ⊙ f_{t+1} comes back from "
       "step t+1: this is the path that lets LSTM gradients survive.",
       lstm_bptt_variant, later_c=False),
    _m("the gradient carried back to c_{t-1} is not multiplied by the forget gate f_t",
       "c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t, so dL/dc_{t-1} = dL/dc_t ⊙ f_t.",
       lstm_bptt_variant, forget_carry=False),
    _m("the tanh derivative (1 - tanh²(c_t)) is missing from dL/dc_t",
       "h_t = o_t ⊙ tanh(c_t), so the path from h_t to c_t brings o_t ⊙ (1 - tanh²(c_t)).",
       lstm_bptt_variant, tanh_grad=False),
)

_SCALE = "Divide the scores q kᵀ by sqrt(d_k), the size of each query/key vector, before the softmax."
_CAUSAL = ("With causal=True query t may look at keys 0..t only: set the scores of later keys (the future) "
           "to -inf before the softmax, e.g. scores.masked_fill(torch.ones(L, L).triu(1).bool(), float('-inf')).")

ATTENTION: tuple[Mistake, ...] = (
    _m("the 1/sqrt(d_k) scale is missing", _SCALE, attention_variant, scale="none"),
    _m("the scores are divided by d_k instead of sqrt(d_k)", _SCALE, attention_variant, scale="dk"),
    _m("the scores are multiplied by sqrt(d_k) instead of divided", _SCALE, attention_variant, scale="mul"),
    _m("the scores are scaled by sqrt(d_v) instead of sqrt(d_k)", _SCALE, attention_variant, scale="dv"),
    _m("the softmax runs over the wrong axis (the queries)",
       "Each query's weights over the keys must sum to 1: softmax over the last axis of q kᵀ (dim=-1).",
       attention_variant, softmax_dim=-2),
    _m("the softmax runs over the wrong axis (the batch)",
       "Each query's weights over the keys must sum to 1: softmax over the last axis of q kᵀ (dim=-1).",
       attention_variant, softmax_dim=0),
    _m("the softmax is missing", "Turn the scores into weights that sum to 1 over the keys: softmax(dim=-1).",
       attention_variant, softmax=False),
    _m("the causal mask is missing, so every position sees the future", _CAUSAL, attention_variant, mask="none"),
    _m("the causal mask looks inverted: it hides the past and lets each position see the future",
       _CAUSAL, attention_variant, mask="inverted"),
    _m("the causal mask is applied after the softmax, so each row of weights no longer sums to 1",
       _CAUSAL, attention_variant, mask="after"),
    _m("masked scores are set to 0 instead of -inf, so exp(0) = 1 still gives the future weight",
       _CAUSAL, attention_variant, mask="zero"),
)

_GLOBAL = ("Compute one norm over all tensors together, sqrt(Σ_k ‖g_k‖²), and scale every tensor by the same "
           "factor min(1, max_norm / norm), so the update keeps its direction.")

CLIP: tuple[Mistake, ...] = (
    _m("each tensor is clipped separately instead of by the global norm", _GLOBAL, clip_variant, rule="per_tensor"),
    _m("the gradients are clipped elementwise (clamped) instead of rescaled", _GLOBAL, clip_variant, rule="clamp"),
    _m("gradients already below max_norm are scaled up", "Only scale down: the factor is min(1, max_norm / norm).",
       clip_variant, rule="always"),
    _m("the global norm is computed as the sum of the tensors' norms",
       "The global norm is sqrt(Σ_k ‖g_k‖²), the norm of all gradients flattened into one vector.",
       clip_variant, norm="sum"),
    _m("the global norm is missing its square root",
       "The global norm is sqrt(Σ_k ‖g_k‖²), the norm of all gradients flattened into one vector.",
       clip_variant, norm="squared"),
)
