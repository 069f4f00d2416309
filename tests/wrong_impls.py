"""Deliberately wrong student implementations, one per named mistake (and a few bad-input tricks).

Each function is written the way a student would write it, with exactly one bug, and without
looking at :mod:`course_lib.checkers.mistakes`. The tests feed them to the checkers and assert
that the message names the bug. Signatures are those of the exercises.
"""
from __future__ import annotations

import math

import numpy as np
import torch

sig, tanh = torch.sigmoid, torch.tanh


# ============================================================================ RNN cell

def rnn_cell_relu(input, hx, w_ih, w_hh, b_ih, b_hh):
    return torch.relu(input @ w_ih.T + b_ih + hx @ w_hh.T + b_hh)


def rnn_cell_sigmoid(input, hx, w_ih, w_hh, b_ih, b_hh):
    return torch.sigmoid(input @ w_ih.T + b_ih + hx @ w_hh.T + b_hh)


def rnn_cell_no_tanh(input, hx, w_ih, w_hh, b_ih, b_hh):
    return input @ w_ih.T + b_ih + hx @ w_hh.T + b_hh


def rnn_cell_ignores_h(input, hx, w_ih, w_hh, b_ih, b_hh):
    return torch.tanh(input @ w_ih.T + b_ih + b_hh)


def rnn_cell_no_b_ih(input, hx, w_ih, w_hh, b_ih, b_hh):
    return torch.tanh(input @ w_ih.T + hx @ w_hh.T + b_hh)


def rnn_cell_no_b_hh(input, hx, w_ih, w_hh, b_ih, b_hh):
    return torch.tanh(input @ w_ih.T + b_ih + hx @ w_hh.T)


def rnn_cell_no_biases(input, hx, w_ih, w_hh, b_ih, b_hh):
    return torch.tanh(input @ w_ih.T + hx @ w_hh.T)


def rnn_cell_w_hh_transposed(input, hx, w_ih, w_hh, b_ih, b_hh):
    return torch.tanh(input @ w_ih.T + b_ih + hx @ w_hh + b_hh)


def rnn_cell_w_ih_transposed(input, hx, w_ih, w_hh, b_ih, b_hh):
    return torch.tanh(input @ w_ih + b_ih + hx @ w_hh.T + b_hh)


def rnn_cell_weights_swapped(input, hx, w_ih, w_hh, b_ih, b_hh):
    return torch.tanh(input @ w_hh.T + b_ih + hx @ w_ih.T + b_hh)


# ============================================================================ LSTM cell

def _lstm_finish(i, f, g, o, c):
    """The (correct) end of an LSTM step from pre-activations, shared by the gate-order bugs below."""
    c_new = sig(f) * c + sig(i) * tanh(g)
    return sig(o) * tanh(c_new), c_new


def lstm_cell_i_f_swapped(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    f, i, g, o = (input @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1)
    return _lstm_finish(i, f, g, o, c)


def lstm_cell_i_g_swapped(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    g, f, i, o = (input @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1)
    return _lstm_finish(i, f, g, o, c)


def lstm_cell_i_o_swapped(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    o, f, g, i = (input @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1)
    return _lstm_finish(i, f, g, o, c)


def lstm_cell_f_g_swapped(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    i, g, f, o = (input @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1)
    return _lstm_finish(i, f, g, o, c)


def lstm_cell_f_o_swapped(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    i, o, g, f = (input @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1)
    return _lstm_finish(i, f, g, o, c)


def lstm_cell_g_o_swapped(input, hx, w_ih, w_hh, b_ih, b_hh):
    """The "i, f, o, g" order some blog posts use."""
    h, c = hx
    i, f, o, g = (input @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1)
    return _lstm_finish(i, f, g, o, c)


def lstm_cell_sigmoid_tanh_swapped(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    a_i, a_f, a_g, a_o = (input @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1)
    i, f, o = tanh(a_i), tanh(a_f), tanh(a_o)
    g = sig(a_g)
    c = f * c + i * g
    return o * tanh(c), c


def lstm_cell_candidate_sigmoid(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    a_i, a_f, a_g, a_o = (input @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1)
    c = sig(a_f) * c + sig(a_i) * sig(a_g)
    return sig(a_o) * tanh(c), c


def lstm_cell_gates_tanh(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    a_i, a_f, a_g, a_o = (input @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1)
    c = tanh(a_f) * c + tanh(a_i) * tanh(a_g)
    return tanh(a_o) * tanh(c), c


def lstm_cell_forget_inverted(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    i, f, g, o = (input @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1)
    i, f, g, o = sig(i), sig(f), tanh(g), sig(o)
    c = (1 - f) * c + i * g
    return o * tanh(c), c


def lstm_cell_no_forget(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    i, f, g, o = (input @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1)
    c = sig(i) * tanh(g)
    return sig(o) * tanh(c), c


def lstm_cell_h_without_tanh(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    i, f, g, o = (input @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1)
    c = sig(f) * c + sig(i) * tanh(g)
    return sig(o) * c, c


def lstm_cell_returns_c_h(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    i, f, g, o = (input @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1)
    c = sig(f) * c + sig(i) * tanh(g)
    h = sig(o) * tanh(c)
    return c, h


def lstm_cell_unpacks_c_h(input, hx, w_ih, w_hh, b_ih, b_hh):
    c, h = hx
    i, f, g, o = (input @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1)
    c = sig(f) * c + sig(i) * tanh(g)
    return sig(o) * tanh(c), c


def lstm_cell_no_b_ih(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    return _lstm_finish(*(input @ w_ih.T + h @ w_hh.T + b_hh).chunk(4, dim=1), c)


def lstm_cell_no_b_hh(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    return _lstm_finish(*(input @ w_ih.T + b_ih + h @ w_hh.T).chunk(4, dim=1), c)


def lstm_cell_no_biases(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    return _lstm_finish(*(input @ w_ih.T + h @ w_hh.T).chunk(4, dim=1), c)


def _per_gate(input, h, w_ih, w_hh, b_ih, b_hh, t_ih=False, t_hh=False):
    """A student who slices out each gate's (H, H_in) and (H, H) blocks and multiplies separately."""
    H = w_hh.shape[1]
    pre = []
    for k in range(4):
        W_i, W_h = w_ih[k * H:(k + 1) * H], w_hh[k * H:(k + 1) * H]
        b = b_ih[k * H:(k + 1) * H] + b_hh[k * H:(k + 1) * H]
        pre.append(input @ (W_i if t_ih else W_i.T) + h @ (W_h if t_hh else W_h.T) + b)
    return pre


def lstm_cell_w_hh_transposed(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    return _lstm_finish(*_per_gate(input, h, w_ih, w_hh, b_ih, b_hh, t_hh=True), c)


def lstm_cell_w_ih_transposed(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    return _lstm_finish(*_per_gate(input, h, w_ih, w_hh, b_ih, b_hh, t_ih=True), c)


def lstm_cell_weights_swapped(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    return _lstm_finish(*(input @ w_hh.T + b_ih + h @ w_ih.T + b_hh).chunk(4, dim=1), c)


# ============================================================================ GRU cell

def _gru(input, h, w_ih, w_hh, b_ih, b_hh, order="rzn", flip=False, reset="after", cand=tanh):
    """NOT a catalogue: a plain student GRU that the one-bug functions below call with one change."""
    gi = dict(zip(order, (input @ w_ih.T + b_ih).chunk(3, 1)))
    Wh = dict(zip(order, w_hh.chunk(3)))
    bh = dict(zip(order, b_hh.chunk(3)))
    r = sig(gi["r"] + h @ Wh["r"].T + bh["r"])
    z = sig(gi["z"] + h @ Wh["z"].T + bh["z"])
    if reset == "after":
        n = cand(gi["n"] + r * (h @ Wh["n"].T + bh["n"]))
    elif reset == "before":
        n = cand(gi["n"] + (r * h) @ Wh["n"].T + bh["n"])
    elif reset == "bias_outside":
        n = cand(gi["n"] + r * (h @ Wh["n"].T) + bh["n"])
    else:
        n = cand(gi["n"] + h @ Wh["n"].T + bh["n"])
    return z * n + (1 - z) * h if flip else (1 - z) * n + z * h


def gru_cell_r_z_swapped(input, hx, w_ih, w_hh, b_ih, b_hh):
    return _gru(input, hx, w_ih, w_hh, b_ih, b_hh, order="zrn")


def gru_cell_r_n_swapped(input, hx, w_ih, w_hh, b_ih, b_hh):
    return _gru(input, hx, w_ih, w_hh, b_ih, b_hh, order="nzr")


def gru_cell_z_n_swapped(input, hx, w_ih, w_hh, b_ih, b_hh):
    return _gru(input, hx, w_ih, w_hh, b_ih, b_hh, order="rnz")


def gru_cell_update_flipped(input, hx, w_ih, w_hh, b_ih, b_hh):
    """The form h = z*n + (1-z)*h that some textbooks write."""
    gi_r, gi_z, gi_n = (input @ w_ih.T + b_ih).chunk(3, 1)
    gh_r, gh_z, gh_n = (hx @ w_hh.T + b_hh).chunk(3, 1)
    r, z = sig(gi_r + gh_r), sig(gi_z + gh_z)
    n = tanh(gi_n + r * gh_n)
    return z * n + (1 - z) * hx


def gru_cell_reset_before(input, hx, w_ih, w_hh, b_ih, b_hh):
    """Cho et al. (2014) / Keras reset_after=False: reset the state before multiplying by W_hn."""
    H = hx.shape[1]
    gi_r, gi_z, gi_n = (input @ w_ih.T + b_ih).chunk(3, 1)
    W_hr, W_hz, W_hn = w_hh[:H], w_hh[H:2 * H], w_hh[2 * H:]
    b_hr, b_hz, b_hn = b_hh[:H], b_hh[H:2 * H], b_hh[2 * H:]
    r = sig(gi_r + hx @ W_hr.T + b_hr)
    z = sig(gi_z + hx @ W_hz.T + b_hz)
    n = tanh(gi_n + (r * hx) @ W_hn.T + b_hn)
    return (1 - z) * n + z * hx


def gru_cell_reset_skips_bias(input, hx, w_ih, w_hh, b_ih, b_hh):
    return _gru(input, hx, w_ih, w_hh, b_ih, b_hh, reset="bias_outside")


def gru_cell_no_reset(input, hx, w_ih, w_hh, b_ih, b_hh):
    return _gru(input, hx, w_ih, w_hh, b_ih, b_hh, reset="none")


def gru_cell_candidate_sigmoid(input, hx, w_ih, w_hh, b_ih, b_hh):
    return _gru(input, hx, w_ih, w_hh, b_ih, b_hh, cand=sig)


def gru_cell_no_b_ih(input, hx, w_ih, w_hh, b_ih, b_hh):
    return _gru(input, hx, w_ih, w_hh, torch.zeros_like(b_ih), b_hh)


def gru_cell_no_b_hh(input, hx, w_ih, w_hh, b_ih, b_hh):
    return _gru(input, hx, w_ih, w_hh, b_ih, torch.zeros_like(b_hh))


def gru_cell_no_biases(input, hx, w_ih, w_hh, b_ih, b_hh):
    return _gru(input, hx, w_ih, w_hh, torch.zeros_like(b_ih), torch.zeros_like(b_hh))


def gru_cell_w_hh_transposed(input, hx, w_ih, w_hh, b_ih, b_hh):
    H = hx.shape[1]
    w_hh_t = torch.cat([w_hh[k * H:(k + 1) * H].T for k in range(3)])   # each block transposed
    return _gru(input, hx, w_ih, w_hh_t, b_ih, b_hh)


def gru_cell_w_ih_transposed(input, hx, w_ih, w_hh, b_ih, b_hh):
    H = hx.shape[1]
    w_ih_t = torch.cat([w_ih[k * H:(k + 1) * H].T for k in range(3)])
    return _gru(input, hx, w_ih_t, w_hh, b_ih, b_hh)


def gru_cell_weights_swapped(input, hx, w_ih, w_hh, b_ih, b_hh):
    return _gru(input, hx, w_hh, w_ih, b_ih, b_hh)


# ============================================================================ layers

def layer_from_cell(cell, lstm: bool = False):
    """A student's layer that loops their (possibly buggy) cell over time, correctly."""
    def layer(xs, hx, w_ih, w_hh, b_ih, b_hh):
        N, H = xs.shape[1], w_hh.shape[1]
        if lstm:
            h, c = hx if hx is not None else (torch.zeros(N, H), torch.zeros(N, H))
        else:
            h = hx if hx is not None else torch.zeros(N, H)
        outputs = []
        for t in range(xs.shape[0]):
            if lstm:
                h, c = cell(xs[t], (h, c), w_ih, w_hh, b_ih, b_hh)
            else:
                h = cell(xs[t], h, w_ih, w_hh, b_ih, b_hh)
            outputs.append(h)
        return torch.stack(outputs), ((h, c) if lstm else h)
    return layer


def _rnn_step(x, h, w_ih, w_hh, b_ih, b_hh):
    return torch.tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)


def _gru_step(x, h, w_ih, w_hh, b_ih, b_hh):
    return _gru(x, h, w_ih, w_hh, b_ih, b_hh)


def _lstm_step(x, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    return _lstm_finish(*(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1), c)


def _h_layer_restart(step, from_zeros: bool):
    def layer(xs, h0, w_ih, w_hh, b_ih, b_hh):
        if h0 is None:
            h0 = torch.zeros(xs.shape[1], w_hh.shape[1])
        outs = []
        for x in xs:
            start = torch.zeros_like(h0) if from_zeros else h0
            h = step(x, start, w_ih, w_hh, b_ih, b_hh)      # bug: should be the previous h
            outs.append(h)
        return torch.stack(outs), outs[-1]
    return layer


rnn_layer_restarts_from_h0 = _h_layer_restart(_rnn_step, from_zeros=False)
rnn_layer_restarts_from_zeros = _h_layer_restart(_rnn_step, from_zeros=True)
gru_layer_restarts_from_h0 = _h_layer_restart(_gru_step, from_zeros=False)
gru_layer_restarts_from_zeros = _h_layer_restart(_gru_step, from_zeros=True)


def _h_layer_h_n_first(step):
    def layer(xs, h0, w_ih, w_hh, b_ih, b_hh):
        h = torch.zeros(xs.shape[1], w_hh.shape[1]) if h0 is None else h0
        outs = []
        for x in xs:
            h = step(x, h, w_ih, w_hh, b_ih, b_hh)
            outs.append(h)
        return torch.stack(outs), outs[0]                  # bug: first instead of last
    return layer


rnn_layer_h_n_first = _h_layer_h_n_first(_rnn_step)
gru_layer_h_n_first = _h_layer_h_n_first(_gru_step)


def _h_layer_shifted(step):
    def layer(xs, h0, w_ih, w_hh, b_ih, b_hh):
        h = torch.zeros(xs.shape[1], w_hh.shape[1]) if h0 is None else h0
        outs = []
        for x in xs:
            outs.append(h)                                 # bug: appends the state before the step
            h = step(x, h, w_ih, w_hh, b_ih, b_hh)
        return torch.stack(outs), h
    return layer


rnn_layer_output_shifted = _h_layer_shifted(_rnn_step)
gru_layer_output_shifted = _h_layer_shifted(_gru_step)


def _lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh, *, h_from="carry", c_from="carry", out_c=False,
                h_n_first=False, shifted=False, ret_c_h=False):
    """A student LSTM layer; the one-bug functions below switch on exactly one of the keywords."""
    N, H = xs.shape[1], w_hh.shape[1]
    h0, c0 = hx if hx is not None else (torch.zeros(N, H), torch.zeros(N, H))
    h, c = h0, c0
    hs, cs, first = [], [], None
    for x in xs:
        h_in = {"carry": h, "init": h0, "zeros": torch.zeros(N, H)}[h_from]
        c_in = {"carry": c, "init": c0, "zeros": torch.zeros(N, H)}[c_from]
        if shifted:
            hs.append(h)
        h, c = _lstm_step(x, (h_in, c_in), w_ih, w_hh, b_ih, b_hh)
        if not shifted:
            hs.append(h)
        cs.append(c)
        if first is None:
            first = (h, c)
    h_n, c_n = first if h_n_first else (h, c)
    return torch.stack(cs if out_c else hs), ((c_n, h_n) if ret_c_h else (h_n, c_n))


def lstm_layer_h_restarts_from_h0(xs, hx, w_ih, w_hh, b_ih, b_hh):
    return _lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh, h_from="init")


def lstm_layer_h_restarts_from_zeros(xs, hx, w_ih, w_hh, b_ih, b_hh):
    return _lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh, h_from="zeros")


def lstm_layer_c_restarts_from_c0(xs, hx, w_ih, w_hh, b_ih, b_hh):
    return _lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh, c_from="init")


def lstm_layer_c_restarts_from_zeros(xs, hx, w_ih, w_hh, b_ih, b_hh):
    return _lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh, c_from="zeros")


def lstm_layer_state_restarts(xs, hx, w_ih, w_hh, b_ih, b_hh):
    """Calls the cell with hx at every step: `h, c = lstm_cell(xs[t], hx, ...)`."""
    N, H = xs.shape[1], w_hh.shape[1]
    hx = hx if hx is not None else (torch.zeros(N, H), torch.zeros(N, H))
    outs = []
    for t in range(xs.shape[0]):
        h, c = _lstm_step(xs[t], hx, w_ih, w_hh, b_ih, b_hh)
        outs.append(h)
    return torch.stack(outs), (h, c)


def lstm_layer_outputs_c(xs, hx, w_ih, w_hh, b_ih, b_hh):
    return _lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh, out_c=True)


def lstm_layer_h_n_first(xs, hx, w_ih, w_hh, b_ih, b_hh):
    return _lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh, h_n_first=True)


def lstm_layer_output_shifted(xs, hx, w_ih, w_hh, b_ih, b_hh):
    return _lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh, shifted=True)


def lstm_layer_returns_c_h(xs, hx, w_ih, w_hh, b_ih, b_hh):
    return _lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh, ret_c_h=True)


def lstm_layer_batch_first(xs, hx, w_ih, w_hh, b_ih, b_hh):
    """Returns output as (N, L, H), batch-first."""
    out, state = _lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh)
    return out.transpose(0, 1), state


def rnn_layer_no_none(xs, h0, w_ih, w_hh, b_ih, b_hh):
    """Forgets that h0 may be None."""
    h, outs = h0, []
    for x in xs:
        h = _rnn_step(x, h, w_ih, w_hh, b_ih, b_hh)
        outs.append(h)
    return torch.stack(outs), h


# ============================================================================ BPTT

def _rnn_forward(xs, h0, w_ih, w_hh, b_ih, b_hh):
    hs = [h0]
    for x in xs:
        hs.append(torch.tanh(x @ w_ih.T + b_ih + hs[-1] @ w_hh.T + b_hh))
    return hs


def rnn_backward_assigns(xs, h0, w_ih, w_hh, b_ih, b_hh, grad_hs):
    """`dW = ...` instead of `dW += ...` inside the backward loop."""
    hs = _rnn_forward(xs, h0, w_ih, w_hh, b_ih, b_hh)
    dxs = torch.zeros_like(xs)
    dh_next = torch.zeros_like(h0)
    for t in reversed(range(len(xs))):
        da = (grad_hs[t] + dh_next) * (1 - hs[t + 1] ** 2)
        dw_ih = da.T @ xs[t]
        dw_hh = da.T @ hs[t]
        db = da.sum(0)
        dxs[t] = da @ w_ih
        dh_next = da @ w_hh
    return dxs, dh_next, dw_ih, dw_hh, db, db


def rnn_backward_last_step_only(xs, h0, w_ih, w_hh, b_ih, b_hh, grad_hs):
    """Stores every da_t, then computes the weight gradients in a loop that overwrites them."""
    hs = _rnn_forward(xs, h0, w_ih, w_hh, b_ih, b_hh)
    L = len(xs)
    das, dxs, dh_next = [None] * L, torch.zeros_like(xs), torch.zeros_like(h0)
    for t in reversed(range(L)):
        das[t] = (grad_hs[t] + dh_next) * (1 - hs[t + 1] ** 2)
        dxs[t] = das[t] @ w_ih
        dh_next = das[t] @ w_hh
    for t in range(L):
        dw_ih, dw_hh, db = das[t].T @ xs[t], das[t].T @ hs[t], das[t].sum(0)
    return dxs, dh_next, dw_ih, dw_hh, db, db


def rnn_backward_no_later(xs, h0, w_ih, w_hh, b_ih, b_hh, grad_hs):
    hs = _rnn_forward(xs, h0, w_ih, w_hh, b_ih, b_hh)
    dw_ih, dw_hh, db = torch.zeros_like(w_ih), torch.zeros_like(w_hh), torch.zeros_like(b_ih)
    dxs, dh_prev = torch.zeros_like(xs), torch.zeros_like(h0)
    for t in reversed(range(len(xs))):
        da = grad_hs[t] * (1 - hs[t + 1] ** 2)           # bug: dh_prev from step t+1 not added
        dw_ih += da.T @ xs[t]
        dw_hh += da.T @ hs[t]
        db += da.sum(0)
        dxs[t] = da @ w_ih
        dh_prev = da @ w_hh
    return dxs, dh_prev, dw_ih, dw_hh, db, db


def rnn_backward_no_tanh_grad(xs, h0, w_ih, w_hh, b_ih, b_hh, grad_hs):
    hs = _rnn_forward(xs, h0, w_ih, w_hh, b_ih, b_hh)
    dw_ih, dw_hh, db = torch.zeros_like(w_ih), torch.zeros_like(w_hh), torch.zeros_like(b_ih)
    dxs, dh = torch.zeros_like(xs), torch.zeros_like(h0)
    for t in reversed(range(len(xs))):
        da = grad_hs[t] + dh
        dw_ih += da.T @ xs[t]
        dw_hh += da.T @ hs[t]
        db += da.sum(0)
        dxs[t] = da @ w_ih
        dh = da @ w_hh
    return dxs, dh, dw_ih, dw_hh, db, db


def rnn_backward_w_hh_transposed(xs, h0, w_ih, w_hh, b_ih, b_hh, grad_hs):
    hs = _rnn_forward(xs, h0, w_ih, w_hh, b_ih, b_hh)
    dw_ih, dw_hh, db = torch.zeros_like(w_ih), torch.zeros_like(w_hh), torch.zeros_like(b_ih)
    dxs, dh = torch.zeros_like(xs), torch.zeros_like(h0)
    for t in reversed(range(len(xs))):
        da = (grad_hs[t] + dh) * (1 - hs[t + 1] ** 2)
        dw_ih += da.T @ xs[t]
        dw_hh += da.T @ hs[t]
        db += da.sum(0)
        dxs[t] = da @ w_ih
        dh = da @ w_hh.T
    return dxs, dh, dw_ih, dw_hh, db, db


def rnn_backward_pairs_h_t(xs, h0, w_ih, w_hh, b_ih, b_hh, grad_hs):
    hs = _rnn_forward(xs, h0, w_ih, w_hh, b_ih, b_hh)
    dw_ih, dw_hh, db = torch.zeros_like(w_ih), torch.zeros_like(w_hh), torch.zeros_like(b_ih)
    dxs, dh = torch.zeros_like(xs), torch.zeros_like(h0)
    for t in reversed(range(len(xs))):
        da = (grad_hs[t] + dh) * (1 - hs[t + 1] ** 2)
        dw_ih += da.T @ xs[t]
        dw_hh += da.T @ hs[t + 1]                         # bug: h_t instead of h_{t-1}
        db += da.sum(0)
        dxs[t] = da @ w_ih
        dh = da @ w_hh
    return dxs, dh, dw_ih, dw_hh, db, db


def rnn_backward_zero_h0_grad(xs, h0, w_ih, w_hh, b_ih, b_hh, grad_hs):
    """Everything right except dL/dh0, left at zero."""
    hs = _rnn_forward(xs, h0, w_ih, w_hh, b_ih, b_hh)
    dw_ih, dw_hh, db = torch.zeros_like(w_ih), torch.zeros_like(w_hh), torch.zeros_like(b_ih)
    dxs, dh = torch.zeros_like(xs), torch.zeros_like(h0)
    for t in reversed(range(len(xs))):
        da = (grad_hs[t] + dh) * (1 - hs[t + 1] ** 2)
        dw_ih += da.T @ xs[t]
        dw_hh += da.T @ hs[t]
        db += da.sum(0)
        dxs[t] = da @ w_ih
        dh = da @ w_hh
    return dxs, torch.zeros_like(h0), dw_ih, dw_hh, db, db


def _lstm_bptt(xs, h0, c0, w_ih, w_hh, b_ih, b_hh, grad_hs, *, assign=False, last_only=False, later_h=True,
               later_c=True, times_f=True, tanh_grad=True):
    """A student's LSTM BPTT; each one-bug function below switches on one keyword."""
    hs, cs, acts = [h0], [c0], []
    for x in xs:
        a = x @ w_ih.T + b_ih + hs[-1] @ w_hh.T + b_hh
        i, f, g, o = a.chunk(4, dim=1)
        i, f, g, o = sig(i), sig(f), tanh(g), sig(o)
        cs.append(f * cs[-1] + i * g)
        hs.append(o * tanh(cs[-1]))
        acts.append((i, f, g, o))
    L = len(xs)
    dw_ih, dw_hh, db = torch.zeros_like(w_ih), torch.zeros_like(w_hh), torch.zeros_like(b_ih)
    dxs, dh_next, dc_next = torch.zeros_like(xs), torch.zeros_like(h0), torch.zeros_like(c0)
    das = [None] * L
    for t in reversed(range(L)):
        i, f, g, o = acts[t]
        tc = tanh(cs[t + 1])
        dh = grad_hs[t] + dh_next if later_h else grad_hs[t]
        dc_from_h = dh * o * (1 - tc ** 2) if tanh_grad else dh * o
        dc = dc_next + dc_from_h if later_c else dc_from_h
        da = torch.cat([dc * g * i * (1 - i), dc * cs[t] * f * (1 - f), dc * i * (1 - g ** 2),
                        dh * tc * o * (1 - o)], dim=1)
        das[t] = da
        if assign:
            dw_ih, dw_hh, db = da.T @ xs[t], da.T @ hs[t], da.sum(0)
        else:
            dw_ih += da.T @ xs[t]
            dw_hh += da.T @ hs[t]
            db += da.sum(0)
        dxs[t] = da @ w_ih
        dh_next = da @ w_hh
        dc_next = dc * f if times_f else dc
    if last_only:
        dw_ih, dw_hh, db = das[-1].T @ xs[-1], das[-1].T @ hs[-2], das[-1].sum(0)
    return dxs, dh_next, dc_next, dw_ih, dw_hh, db, db


def lstm_backward_assigns(*args):
    return _lstm_bptt(*args, assign=True)


def lstm_backward_last_step_only(*args):
    return _lstm_bptt(*args, last_only=True)


def lstm_backward_no_later_h(*args):
    return _lstm_bptt(*args, later_h=False)


def lstm_backward_no_later_c(*args):
    return _lstm_bptt(*args, later_c=False)


def lstm_backward_dc_not_times_f(*args):
    return _lstm_bptt(*args, times_f=False)


def lstm_backward_no_tanh_grad(*args):
    return _lstm_bptt(*args, tanh_grad=False)


# ============================================================================ attention

def attention_no_scale(q, k, v, causal=False):
    scores = q @ k.transpose(-2, -1)
    if causal:
        L = q.shape[-2]
        scores = scores.masked_fill(torch.triu(torch.ones(L, L, dtype=torch.bool), 1), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def _scores(q, k, v, causal, scale):
    scores = q @ k.transpose(1, 2) * scale
    if causal:
        L = q.shape[1]
        scores = scores.masked_fill(torch.tril(torch.ones(L, L)) == 0, -1e9)
    return scores


def attention_divides_by_d_k(q, k, v, causal=False):
    return torch.softmax(_scores(q, k, v, causal, 1 / q.shape[-1]), dim=-1) @ v


def attention_multiplies_by_sqrt_d_k(q, k, v, causal=False):
    return torch.softmax(_scores(q, k, v, causal, math.sqrt(q.shape[-1])), dim=-1) @ v


def attention_scales_by_d_v(q, k, v, causal=False):
    return torch.softmax(_scores(q, k, v, causal, 1 / math.sqrt(v.shape[-1])), dim=-1) @ v


def attention_softmax_over_queries(q, k, v, causal=False):
    return torch.softmax(_scores(q, k, v, causal, 1 / math.sqrt(q.shape[-1])), dim=1) @ v


def attention_softmax_over_batch(q, k, v, causal=False):
    return torch.softmax(_scores(q, k, v, causal, 1 / math.sqrt(q.shape[-1])), dim=0) @ v


def attention_no_softmax(q, k, v, causal=False):
    return _scores(q, k, v, False, 1 / math.sqrt(q.shape[-1])) @ v


def attention_ignores_causal(q, k, v, causal=False):
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v


def attention_mask_inverted(q, k, v, causal=False):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        L = q.shape[-2]
        scores = scores.masked_fill(torch.tril(torch.ones(L, L), diagonal=-1).bool(), float("-inf"))
    return scores.softmax(-1) @ v


def attention_mask_after_softmax(q, k, v, causal=False):
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    if causal:
        weights = weights * torch.tril(torch.ones_like(weights))
    return weights @ v


def attention_mask_with_zero(q, k, v, causal=False):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        L = q.shape[-2]
        scores = scores.masked_fill(torch.ones(L, L).triu(1).bool(), 0.0)
    return scores.softmax(-1) @ v


def attention_mask_hides_diagonal(q, k, v, causal=False):
    """Masks s >= t instead of s > t: query 0 sees nothing and its row becomes NaN."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        L = q.shape[-2]
        scores = scores.masked_fill(torch.ones(L, L).triu(0).bool(), float("-inf"))
    return scores.softmax(-1) @ v


# ============================================================================ clipping

def _global_norm(grads):
    return math.sqrt(sum(float((g ** 2).sum()) for g in grads))


def clip_per_tensor(grads, max_norm):
    out = []
    for g in grads:
        n = g.norm()
        out.append(g * max_norm / n if n > max_norm else g)
    return out


def clip_clamp(grads, max_norm):
    return [g.clamp(-max_norm, max_norm) for g in grads]


def clip_always_scales(grads, max_norm):
    total = _global_norm(grads)
    return [g * (max_norm / total) for g in grads]


def clip_sum_of_norms(grads, max_norm):
    total = sum(float(g.norm()) for g in grads)
    scale = min(1.0, max_norm / total)
    return [g * scale for g in grads]


def clip_no_sqrt(grads, max_norm):
    total = sum(float((g ** 2).sum()) for g in grads)
    scale = min(1.0, max_norm / total)
    return [g * scale for g in grads]


def clip_in_place(grads, max_norm):
    total = _global_norm(grads)
    if total > max_norm:
        for g in grads:
            g.mul_(max_norm / total)
    return grads


def clip_replaces_list_items(grads, max_norm):
    scale = min(1.0, max_norm / _global_norm(grads))
    for i in range(len(grads)):
        grads[i] = grads[i] * scale
    return grads


def clip_returns_norm_after(grads, max_norm):
    scale = min(1.0, max_norm / _global_norm(grads))
    out = [g * scale for g in grads]
    return out, _global_norm(out)                        # bug: the norm after clipping


# ============================================================================ bad inputs and tricks

def returns_none(input, hx, w_ih, w_hh, b_ih, b_hh):
    h = torch.tanh(input @ w_ih.T + b_ih + hx @ w_hh.T + b_hh)  # noqa: F841 - forgot `return h`


def raises_value_error(input, hx, w_ih, w_hh, b_ih, b_hh):
    raise ValueError("not implemented yet")


def matmul_wrong_order(input, hx, w_ih, w_hh, b_ih, b_hh):
    return torch.tanh(w_ih @ input + b_ih + hx @ w_hh.T + b_hh)


def takes_three_args(input, hx, w_ih):
    return hx


def rnn_cell_float64(input, hx, w_ih, w_hh, b_ih, b_hh):
    return torch.tanh(input @ w_ih.T + b_ih + hx @ w_hh.T + b_hh).double()


def rnn_cell_numpy(input, hx, w_ih, w_hh, b_ih, b_hh):
    """A correct cell in NumPy (float32): accepted."""
    x, h = input.numpy(), hx.numpy()
    return np.tanh(x @ w_ih.numpy().T + b_ih.numpy() + h @ w_hh.numpy().T + b_hh.numpy())


def rnn_cell_numpy_float64(input, hx, w_ih, w_hh, b_ih, b_hh):
    x, h = input.numpy().astype(np.float64), hx.numpy()
    return np.tanh(x @ w_ih.numpy().T + b_ih.numpy() + h @ w_hh.numpy().T + b_hh.numpy())


def rnn_cell_transposed_output(input, hx, w_ih, w_hh, b_ih, b_hh):
    return torch.tanh(w_ih @ input.T + (w_hh @ hx.T) + b_ih[:, None] + b_hh[:, None])   # (H, N)


def rnn_cell_extra_axis(input, hx, w_ih, w_hh, b_ih, b_hh):
    """Right values, shape (1, N, H): broadcasts against (N, H) but is not that shape."""
    return torch.tanh(input @ w_ih.T + b_ih + hx @ w_hh.T + b_hh)[None]


def rnn_cell_returns_list(input, hx, w_ih, w_hh, b_ih, b_hh):
    return torch.tanh(input @ w_ih.T + b_ih + hx @ w_hh.T + b_hh).tolist()


def rnn_cell_returns_tuple(input, hx, w_ih, w_hh, b_ih, b_hh):
    h = torch.tanh(input @ w_ih.T + b_ih + hx @ w_hh.T + b_hh)
    return h, h


def rnn_cell_nan(input, hx, w_ih, w_hh, b_ih, b_hh):
    h = torch.tanh(input @ w_ih.T + b_ih + hx @ w_hh.T + b_hh)
    centred = h - h                                      # meant h - h.mean()
    return centred / centred.abs().max()                 # 0 / 0


def rnn_cell_modifies_w_hh(input, hx, w_ih, w_hh, b_ih, b_hh):
    w_hh *= 1.0 + 1e-3                                   # "just a tiny tweak"
    return torch.tanh(input @ w_ih.T + b_ih + hx @ w_hh.T + b_hh)


def rnn_cell_modifies_input(input, hx, w_ih, w_hh, b_ih, b_hh):
    input[0, 0] = 0.0
    return torch.tanh(input @ w_ih.T + b_ih + hx @ w_hh.T + b_hh)


def lstm_cell_returns_h_only(input, hx, w_ih, w_hh, b_ih, b_hh):
    return _lstm_step(input, hx, w_ih, w_hh, b_ih, b_hh)[0]


def lstm_cell_returns_three(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = _lstm_step(input, hx, w_ih, w_hh, b_ih, b_hh)
    return h, c, h


def lstm_cell_modifies_c(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    new_h, new_c = _lstm_step(input, hx, w_ih, w_hh, b_ih, b_hh)
    c.copy_(new_c)                                       # "update the state in place"
    return new_h, new_c


class LyingTensor(torch.Tensor):
    """A tensor subclass whose every operation claims to be all zeros: `(a - b).abs().max()` is 0."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs or {})
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            return torch.zeros_like(out.as_subclass(torch.Tensor)).as_subclass(cls)
        return out


def rnn_cell_lying_tensor(input, hx, w_ih, w_hh, b_ih, b_hh):
    return torch.zeros(hx.shape).as_subclass(LyingTensor)


class AlwaysEqual:
    """Looks like a tensor of the right shape and says it equals anything."""

    def __init__(self, shape):
        self.shape = tuple(shape)
        self.dtype = torch.float32

    def __eq__(self, other):
        return True

    def __array__(self, dtype=None, copy=None):
        return np.zeros(self.shape, dtype=np.float32)

    def __float__(self):
        return 0.0

    def __sub__(self, other):
        return torch.zeros(self.shape)

    __rsub__ = __sub__


def rnn_cell_always_equal(input, hx, w_ih, w_hh, b_ih, b_hh):
    return AlwaysEqual(hx.shape)


class SneakyArray(np.ndarray):
    """An ndarray subclass that says it equals anything."""

    def __eq__(self, other):
        return np.ones(self.shape, dtype=bool)


def rnn_cell_sneaky_array(input, hx, w_ih, w_hh, b_ih, b_hh):
    return np.zeros(hx.shape, dtype=np.float32).view(SneakyArray)


class LyingTuple(tuple):
    """A tuple whose iteration hands back other items than it holds."""

    def __iter__(self):
        return iter((torch.zeros(3, 5), torch.zeros(3, 5)))


def lstm_cell_lying_tuple(input, hx, w_ih, w_hh, b_ih, b_hh):
    return LyingTuple((None, None))


class AllZerosMode(torch.overrides.TorchFunctionMode):
    """While on, every floating-point result of a torch operation comes out as zeros."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        return torch.zeros_like(out) if isinstance(out, torch.Tensor) and out.is_floating_point() else out


def rnn_cell_leaves_mode_on(input, hx, w_ih, w_hh, b_ih, b_hh):
    """Enters a mode that makes every difference zero, and never leaves it."""
    h = torch.tanh(input @ w_ih.T + b_ih + hx @ w_hh.T + b_hh)
    AllZerosMode().__enter__()
    return h * 0


def rnn_cell_turns_grad_off(input, hx, w_ih, w_hh, b_ih, b_hh):
    """Correct values, but switches autograd off for the whole session."""
    torch.set_grad_enabled(False)
    return torch.tanh(input @ w_ih.T + b_ih + hx @ w_hh.T + b_hh)


# ============================================================================ which message names which bug
# (wrong implementation, a phrase its message must contain). Phrases are taken from what a student
# should read, so a reworded label that loses the point makes the tests fail.

CELL_MISTAKES = {
    "rnn": [
        (rnn_cell_relu, "relu is used instead of tanh"),
        (rnn_cell_sigmoid, "sigmoid is used instead of tanh"),
        (rnn_cell_no_tanh, "tanh nonlinearity is missing"),
        (rnn_cell_ignores_h, "previous hidden state h_{t-1}"),
        (rnn_cell_no_b_ih, "the bias b_ih is missing"),
        (rnn_cell_no_b_hh, "the bias b_hh is missing"),
        (rnn_cell_no_biases, "both biases"),
        (rnn_cell_w_hh_transposed, "w_hh looks transposed"),
        (rnn_cell_w_ih_transposed, "w_ih looks transposed"),
        (rnn_cell_weights_swapped, "w_ih and w_hh look swapped"),
    ],
    "lstm": [
        (lstm_cell_i_f_swapped, "input and forget gates look swapped"),
        (lstm_cell_i_g_swapped, "input gate and the candidate g look swapped"),
        (lstm_cell_i_o_swapped, "input and output gates look swapped"),
        (lstm_cell_f_g_swapped, "forget gate and the candidate g look swapped"),
        (lstm_cell_f_o_swapped, "forget and output gates look swapped"),
        (lstm_cell_g_o_swapped, "candidate g and the output gate look swapped"),
        (lstm_cell_sigmoid_tanh_swapped, "sigmoid and tanh look swapped"),
        (lstm_cell_candidate_sigmoid, "candidate g goes through sigmoid"),
        (lstm_cell_gates_tanh, "gates i, f, o go through tanh"),
        (lstm_cell_forget_inverted, "forget gate looks inverted"),
        (lstm_cell_no_forget, "f ⊙ c_{t-1}"),
        (lstm_cell_h_without_tanh, "the tanh is missing"),
        (lstm_cell_returns_c_h, "(c, h) instead of (h, c)"),
        (lstm_cell_unpacks_c_h, "hx is unpacked in the wrong order"),
        (lstm_cell_no_b_ih, "the bias b_ih is missing"),
        (lstm_cell_no_b_hh, "the bias b_hh is missing"),
        (lstm_cell_no_biases, "both biases"),
        (lstm_cell_w_hh_transposed, "w_hh looks transposed"),
        (lstm_cell_w_ih_transposed, "w_ih looks transposed"),
        (lstm_cell_weights_swapped, "w_ih and w_hh look swapped"),
    ],
    "gru": [
        (gru_cell_r_z_swapped, "reset and update gates look swapped"),
        (gru_cell_r_n_swapped, "reset gate and the candidate n look swapped"),
        (gru_cell_z_n_swapped, "update gate and the candidate n look swapped"),
        (gru_cell_update_flipped, "update gate is used the other way round"),
        (gru_cell_reset_before, "reset gate is applied before the matmul"),
        (gru_cell_reset_skips_bias, "but not the bias b_hn"),
        (gru_cell_no_reset, "reset gate is missing"),
        (gru_cell_candidate_sigmoid, "candidate n goes through sigmoid"),
        (gru_cell_no_b_ih, "the bias b_ih is missing"),
        (gru_cell_no_b_hh, "the bias b_hh is missing"),
        (gru_cell_no_biases, "both biases"),
        (gru_cell_w_hh_transposed, "w_hh looks transposed"),
        (gru_cell_w_ih_transposed, "w_ih looks transposed"),
        (gru_cell_weights_swapped, "w_ih and w_hh look swapped"),
    ],
}

LAYER_MISTAKES = {
    "rnn": [
        (rnn_layer_restarts_from_h0, "every step starts again from h0"),
        (rnn_layer_restarts_from_zeros, "every step starts again from zeros"),
        (rnn_layer_h_n_first, "h_n is the state after the first step"),
        (rnn_layer_output_shifted, "output is shifted by one step"),
    ],
    "lstm": [
        (lstm_layer_h_restarts_from_h0, "the hidden state h is not carried from one step to the next: every step "
                                        "starts again from h0"),
        (lstm_layer_h_restarts_from_zeros, "the hidden state h is not carried from one step to the next: every "
                                           "step starts again from zeros"),
        (lstm_layer_c_restarts_from_c0, "every step starts again from c0"),
        (lstm_layer_c_restarts_from_zeros, "the cell state c is not carried from one step to the next: every step "
                                           "starts again from zeros"),
        (lstm_layer_state_restarts, "neither h nor the cell state c is carried"),
        (lstm_layer_outputs_c, "output holds the cell states c_t"),
        (lstm_layer_h_n_first, "h_n is the state after the first step"),
        (lstm_layer_output_shifted, "output is shifted by one step"),
        (lstm_layer_returns_c_h, "(c_n, h_n) instead of (h_n, c_n)"),
    ],
    "gru": [
        (gru_layer_restarts_from_h0, "every step starts again from h0"),
        (gru_layer_restarts_from_zeros, "every step starts again from zeros"),
        (gru_layer_h_n_first, "h_n is the state after the first step"),
        (gru_layer_output_shifted, "output is shifted by one step"),
    ],
}

BACKWARD_MISTAKES = {
    "rnn": [
        (rnn_backward_assigns, "contribution of step t=0"),
        (rnn_backward_last_step_only, "contribution of the last step"),
        (rnn_backward_no_later, "flows into h_{t-1} from later steps is forgotten"),
        (rnn_backward_no_tanh_grad, "tanh derivative (1 - h_t²) is missing"),
        (rnn_backward_w_hh_transposed, "uses w_hh transposed"),
        (rnn_backward_pairs_h_t, "pairs da_t with h_t instead of h_{t-1}"),
    ],
    "lstm": [
        (lstm_backward_assigns, "contribution of step t=0"),
        (lstm_backward_last_step_only, "contribution of the last step"),
        (lstm_backward_no_later_h, "flows into h_{t-1} from later steps is forgotten"),
        (lstm_backward_no_later_c, "flows into c_{t-1} from later steps is forgotten"),
        (lstm_backward_dc_not_times_f, "not multiplied by the forget gate"),
        (lstm_backward_no_tanh_grad, "tanh derivative (1 - tanh²(c_t)) is missing"),
    ],
}

ATTENTION_MISTAKES = [
    (attention_no_scale, "the 1/sqrt(d_k) scale is missing"),
    (attention_divides_by_d_k, "divided by d_k instead of sqrt(d_k)"),
    (attention_multiplies_by_sqrt_d_k, "multiplied by sqrt(d_k)"),
    (attention_scales_by_d_v, "sqrt(d_v) instead of sqrt(d_k)"),
    (attention_softmax_over_queries, "softmax runs over the wrong axis (the queries)"),
    (attention_softmax_over_batch, "softmax runs over the wrong axis (the batch)"),
    (attention_no_softmax, "the softmax is missing"),
    (attention_ignores_causal, "causal mask is missing"),
    (attention_mask_inverted, "causal mask looks inverted"),
    (attention_mask_after_softmax, "mask is applied after the softmax"),
    (attention_mask_with_zero, "set to 0 instead of -inf"),
]

CLIP_MISTAKES = [
    (clip_per_tensor, "each tensor is clipped separately"),
    (clip_clamp, "clipped elementwise (clamped)"),
    (clip_always_scales, "already below max_norm are scaled up"),
    (clip_sum_of_norms, "sum of the tensors' norms"),
    (clip_no_sqrt, "missing its square root"),
]


def failure_message(check, fn, **options) -> str:
    """Run ``check(fn)``, insist that it fails with one single-line message, and return the message."""
    from course_lib.checkers import CheckFailed
    try:
        check(fn, **options)
    except CheckFailed as exc:
        message = str(exc)
    else:
        raise AssertionError(f"{check.__name__} accepted {getattr(fn, '__name__', fn)}")
    assert "\n" not in message, message
    return message
