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


# ============================================================================ loops that are wrong around a right cell
# (issue 18: a layer whose cell is right but whose loop is not must hear about the loop, not the cell)

def _loop(step, lstm, *, read="t", backwards=False, flip_back=False, ignore_start="", stack="time",
          prepend=False, squeeze=False):
    """A student's layer around a correct step; each one-bug function below switches on one keyword."""
    def layer(xs, hx, w_ih, w_hh, b_ih, b_hh):
        L, N, H = xs.shape[0], xs.shape[1], w_hh.shape[1]
        if lstm:
            h, c = hx if hx is not None else (torch.zeros(N, H), torch.zeros(N, H))
            if "h" in ignore_start:
                h = torch.zeros(N, H)
            if "c" in ignore_start:
                c = torch.zeros(N, H)
        else:
            h = torch.zeros(N, H) if hx is None or ignore_start else hx
        hs = []
        for t in (reversed(range(L)) if backwards else range(L)):
            x = {"t": xs[t], "first": xs[0], "last": xs[-1], "previous": xs[max(t - 1, 0)]}[read]
            if lstm:
                h, c = step(x, (h, c), w_ih, w_hh, b_ih, b_hh)
            else:
                h = step(x, h, w_ih, w_hh, b_ih, b_hh)
            if prepend:
                hs.insert(0, h)
            else:
                hs.append(h)
        if flip_back:
            hs = hs[::-1]
        if stack == "batch":
            output = torch.stack(hs, dim=1).reshape(L, N, H)     # bug: view as (L, N, H) after stacking on dim 1
        elif stack == "cat":
            output = torch.cat(hs, dim=1).view(L, N, H)
        else:
            output = torch.stack(hs)
        if squeeze:
            output, h = output.squeeze(), h.squeeze()
        return output, ((h, c) if lstm else h)
    return layer


_STEPS = {"rnn": _rnn_step, "gru": _gru_step, "lstm": _lstm_step}


def loop_mistakes(kind):
    """(wrong layer, phrase of the message) for the loop bugs of issue 18, for one kind of layer."""
    lstm = kind == "lstm"
    step = _STEPS[kind]
    rows = [
        (_loop(step, lstm, read="first"), "time index is not advanced"),
        (_loop(step, lstm, read="last"), "time index is not advanced"),
        (_loop(step, lstm, backwards=True), "read backwards"),
        (_loop(step, lstm, backwards=True, flip_back=True), "read backwards"),
        (_loop(step, lstm, ignore_start="hc"), "initial state is ignored"),
        (_loop(step, lstm, stack="batch"), "wrong axis"),
        (_loop(step, lstm, stack="cat"), "wrong axis"),
        # not in the catalogue: the message must still point at the loop, never at the cell
        (_loop(step, lstm, read="previous"), "loop feeds the cell the wrong time step"),
        (_loop(step, lstm, prepend=True), "look at how output is assembled"),
        (_loop(step, lstm, squeeze=True), "batch=1"),
    ]
    if lstm:
        rows += [(_loop(step, lstm, ignore_start="h"), "initial hidden state h0 is ignored"),
                 (_loop(step, lstm, ignore_start="c"), "initial cell state c0 is ignored")]
    return rows


LOOP_MISTAKES = {kind: loop_mistakes(kind) for kind in ("rnn", "lstm", "gru")}


# ============================================================================ issue 18: other classes

def count_recurrent_h_by_h_in(input_size, hidden_size, num_layers):
    """Sizes each recurrent matrix H x H_in (coincides with 'no biases' at the first size the checker tries)."""
    total = 0
    for k in range(num_layers):
        n_in = input_size if k == 0 else hidden_size
        total += 3 * (hidden_size * n_in + hidden_size * n_in + 2 * hidden_size)
    return total


def clip_divides_by_bare_norm(grads, max_norm):
    total = math.sqrt(sum(float((g ** 2).sum()) for g in grads))
    scale = min(1.0, max_norm / total)                     # bug: ZeroDivisionError when every gradient is 0
    return [g * scale for g in grads], total


def clip_normalises_then_rescales(grads, max_norm):
    total = torch.sqrt(sum((g ** 2).sum() for g in grads))
    return [g / total * torch.clamp(total, max=max_norm) for g in grads]   # bug: 0 / 0 = NaN


def attention_softmax_by_hand(q, k, v, causal=False):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        L, S = scores.shape[-2:]
        scores = scores.masked_fill(torch.ones(L, S, dtype=torch.bool).triu(1), float("-inf"))
    e = scores.exp()                                       # bug: no max subtraction, overflows for large scores
    return (e / e.sum(-1, keepdim=True)) @ v


def attention_squeezes(q, k, v, causal=False):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        L, S = scores.shape[-2:]
        scores = scores.masked_fill(torch.ones(L, S, dtype=torch.bool).triu(1), float("-inf"))
    return (scores.softmax(-1) @ v).squeeze()              # bug: drops the batch axis when N = 1


OTHER_MISTAKES = [   # (checker name, wrong implementation, a phrase its message must contain)
    ("check_parameter_count", count_recurrent_h_by_h_in, "counted as H × H_in"),
    ("check_clip_grad_norm", clip_divides_by_bare_norm, "global norm is 0"),
    ("check_clip_grad_norm", clip_normalises_then_rescales, "global norm is 0"),
    ("check_attention", attention_softmax_by_hand, "Subtract each row's maximum"),
    ("check_attention", attention_squeezes, "batch=1"),
]


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


# ============================================================================ unusual but correct (must pass)

def ok_rnn_cell_linear(input, hx, w_ih, w_hh, b_ih, b_hh):
    return torch.tanh(torch.nn.functional.linear(input, w_ih, b_ih) + torch.nn.functional.linear(hx, w_hh, b_hh))


def ok_rnn_cell_concatenated(input, hx, w_ih, w_hh, b_ih, b_hh):
    return torch.tanh(torch.cat([input, hx], dim=1) @ torch.cat([w_ih, w_hh], dim=1).T + (b_ih + b_hh))


def ok_lstm_cell_sliced_float64(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = (t.double() for t in hx)
    x, H = input.double(), hx[0].shape[1]
    a = x @ w_ih.double().T + b_ih.double() + h @ w_hh.double().T + b_hh.double()
    i, f, g, o = (a[:, k * H:(k + 1) * H] for k in range(4))
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return [(torch.sigmoid(o) * torch.tanh(c_new)).float(), c_new.float()]       # a list is a fine pair


def ok_gru_cell_einsum(input, hx, w_ih, w_hh, b_ih, b_hh):
    gi = torch.einsum("ni,gi->ng", input, w_ih) + b_ih
    gh = torch.einsum("nh,gh->ng", hx, w_hh) + b_hh
    H = hx.shape[1]
    r = torch.sigmoid(gi[:, :H] + gh[:, :H])
    z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    return torch.lerp(n, hx, z)                            # (1 - z) n + z h


def ok_rnn_layer_preallocated(xs, h0, w_ih, w_hh, b_ih, b_hh):
    L, N, H = xs.shape[0], xs.shape[1], w_hh.shape[0]
    out = xs.new_empty(L, N, H)
    h = h0 if h0 is not None else xs.new_zeros(N, H)
    for t, x in enumerate(xs.unbind(0)):
        h = _rnn_step(x, h, w_ih, w_hh, b_ih, b_hh)
        out[t] = h
    return out, out[-1].clone()


def ok_rnn_layer_numpy(xs, h0, w_ih, w_hh, b_ih, b_hh):
    xs, w_ih, w_hh, b_ih, b_hh = (t.numpy() for t in (xs, w_ih, w_hh, b_ih, b_hh))
    h = np.zeros((xs.shape[1], w_hh.shape[0]), dtype=np.float32) if h0 is None else h0.numpy()
    hs = []
    for x in xs:
        h = np.tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
        hs.append(h)
    return np.stack(hs).astype(np.float32), h.astype(np.float32)


def ok_gru_layer_cat(xs, h0, w_ih, w_hh, b_ih, b_hh):
    h = torch.zeros(xs.shape[1], w_hh.shape[1]) if h0 is None else h0
    out = None
    for x in xs:
        h = _gru_step(x, h, w_ih, w_hh, b_ih, b_hh)
        out = h[None] if out is None else torch.cat([out, h[None]], dim=0)
    return out, h


def ok_lstm_layer_recursive(xs, hx, w_ih, w_hh, b_ih, b_hh):
    if hx is None:
        z = torch.zeros(xs.shape[1], w_hh.shape[1])
        hx = (z, z)
    h, c = _lstm_step(xs[0], hx, w_ih, w_hh, b_ih, b_hh)
    if len(xs) == 1:
        return h[None], (h, c)
    rest, last = ok_lstm_layer_recursive(xs[1:], (h, c), w_ih, w_hh, b_ih, b_hh)
    return torch.cat([h[None], rest]), last


def ok_attention_einsum_stable(q, k, v, causal=False):
    s = torch.einsum("nld,nsd->nls", q, k) / q.shape[-1] ** 0.5
    if causal:
        s = torch.where(torch.ones(s.shape[-2:], dtype=torch.bool).tril(), s, torch.tensor(float("-inf")))
    e = (s - s.amax(-1, keepdim=True)).exp()
    return torch.einsum("nls,nsd->nld", e / e.sum(-1, keepdim=True), v)


def ok_attention_additive_mask(q, k, v, causal=False):
    s = q @ k.mT * q.shape[-1] ** -0.5
    if causal:
        s = s + torch.full(s.shape[-2:], -1e9).triu(1)     # a large negative number instead of -inf
    return torch.softmax(s, dim=-1) @ v


def ok_clip_guarded(grads, max_norm):
    total = torch.linalg.vector_norm(torch.cat([g.reshape(-1) for g in grads]))
    if total > max_norm:
        return [g * (max_norm / total) for g in grads]
    return [g.clone() for g in grads]


def ok_clip_numpy_norm(grads, max_norm):
    total = float(np.sqrt(sum(np.sum(g.numpy().astype(np.float64) ** 2) for g in grads)))
    factor = min(1.0, max_norm / (total + 1e-6))
    return [g * factor for g in grads], np.float64(total)


def ok_count_closed_form(input_size, hidden_size, num_layers):
    H = hidden_size
    return 3 * (H * input_size + H * H + 2 * H) + (num_layers - 1) * 3 * (2 * H * H + 2 * H)


def ok_norms_retain_grad(xs, h0, w_ih, w_hh, b_ih, b_hh):
    h = h0.clone().requires_grad_()
    hs = []
    with torch.enable_grad():
        for x in xs:
            h = _rnn_step(x, h, w_ih, w_hh, b_ih, b_hh)
            h.retain_grad()
            hs.append(h)
        hs[-1].sum().backward()
    return torch.stack([s.grad.norm() for s in hs])


def ok_forecaster_h_n(weights, x):
    w_ih, w_hh, b_ih, b_hh, w_out, b_out = weights
    lstm = torch.nn.LSTM(1, w_hh.shape[1], batch_first=True)
    with torch.no_grad():
        for p, w in zip(lstm.parameters(), (w_ih, w_hh, b_ih, b_hh)):
            p.copy_(w)
        _, (h_n, _) = lstm(x)
        return h_n[-1] @ w_out.T + b_out                   # the last layer's state, (N, H)


def ok_rnn_backward_dict(xs, h0, w_ih, w_hh, b_ih, b_hh, grad_hs):
    """BPTT that collects the per-step contributions and sums them at the end, returned as a dict."""
    hs = _rnn_forward(xs, h0, w_ih, w_hh, b_ih, b_hh)
    das, dh = [None] * len(xs), torch.zeros_like(h0)
    for t in range(len(xs) - 1, -1, -1):
        das[t] = (grad_hs[t] + dh) * (1 - hs[t + 1] ** 2)
        dh = das[t] @ w_hh
    da = torch.stack(das)                                  # (L, N, H)
    db = da.sum(dim=(0, 1))
    return {"xs": da @ w_ih, "h0": dh, "w_ih": torch.einsum("lnh,lni->hi", da, xs),
            "w_hh": torch.einsum("lnh,lnk->hk", da, torch.stack(hs[:-1])), "b_ih": db, "b_hh": db.clone()}


UNUSUAL_CORRECT = [   # (checker name, correct implementation written an unusual way)
    ("check_rnn_cell", ok_rnn_cell_linear), ("check_rnn_cell", ok_rnn_cell_concatenated),
    ("check_lstm_cell", ok_lstm_cell_sliced_float64), ("check_gru_cell", ok_gru_cell_einsum),
    ("check_rnn_layer", ok_rnn_layer_preallocated), ("check_rnn_layer", ok_rnn_layer_numpy),
    ("check_gru_layer", ok_gru_layer_cat), ("check_lstm_layer", ok_lstm_layer_recursive),
    ("check_attention", ok_attention_einsum_stable), ("check_attention", ok_attention_additive_mask),
    ("check_clip_grad_norm", ok_clip_guarded), ("check_clip_grad_norm", ok_clip_numpy_norm),
    ("check_parameter_count", ok_count_closed_form), ("check_state_gradient_norms", ok_norms_retain_grad),
    ("check_forecaster", ok_forecaster_h_n), ("check_rnn_backward", ok_rnn_backward_dict),
]
