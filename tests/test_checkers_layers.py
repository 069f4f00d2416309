"""Tests of course_lib.checkers.layers: do correct layers pass, and is every named mistake named?"""
import pytest
import torch

import wrong_impls as W
from course_lib import reference
from course_lib.checkers import check_gru_layer, check_lstm_layer, check_rnn_layer

CHECKS = {"rnn": check_rnn_layer, "lstm": check_lstm_layer, "gru": check_gru_layer}
CELLS = {"rnn": reference.rnn_cell, "lstm": reference.lstm_cell, "gru": reference.gru_cell}


def via_torch_module(cls, lstm=False):
    """A layer that loads the weights into torch.nn.RNN/LSTM/GRU (time-major, one layer)."""
    def layer(xs, hx, w_ih, w_hh, b_ih, b_hh):
        module = cls(w_ih.shape[1], w_hh.shape[1])
        with torch.no_grad():
            for p, w in zip((module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0),
                            (w_ih, w_hh, b_ih, b_hh)):
                p.copy_(w)
        if hx is not None:
            hx = tuple(s[None] for s in hx) if lstm else hx[None]
        output, last = module(xs, hx)
        return output, (tuple(s[0] for s in last) if lstm else last[0])
    return layer


def lstm_layer_preallocated(xs, hx, w_ih, w_hh, b_ih, b_hh):
    """A student layer that fills a preallocated output and handles hx=None with new_zeros."""
    L, N, H = xs.shape[0], xs.shape[1], w_hh.shape[1]
    h, c = hx if hx is not None else (xs.new_zeros(N, H), xs.new_zeros(N, H))
    output = torch.empty(L, N, H)
    for t in range(L):
        gates = xs[t] @ w_ih.T + h @ w_hh.T + b_ih + b_hh
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        output[t] = h
    return output, (h, c)


CORRECT = {
    "rnn": [W.layer_from_cell(reference.rnn_cell), via_torch_module(torch.nn.RNN)],
    "lstm": [W.layer_from_cell(reference.lstm_cell, lstm=True), via_torch_module(torch.nn.LSTM, lstm=True),
             lstm_layer_preallocated],
    "gru": [W.layer_from_cell(reference.gru_cell), via_torch_module(torch.nn.GRU)],
}


@pytest.mark.parametrize("kind,fn", [(k, f) for k, fs in CORRECT.items() for f in fs])
def test_correct_layers_pass(kind, fn, capsys):
    """Does a correct layer (a loop over the reference cell, torch.nn's layer, a student's loop) pass?"""
    assert CHECKS[kind](fn) is None
    state = "hx" if kind == "lstm" else "h0"
    assert capsys.readouterr().out == (
        f"{kind}_layer: correct on 5 random cases (length=4, batch=3, input=4, hidden=5, and one with "
        f"input=hidden=5; {state} given and None; and batch=1, length=1).\n")


@pytest.mark.parametrize("kind", CHECKS)
def test_other_seeds_and_shapes(kind, capsys):
    """Do other seeds and shapes (length 1 included) pass a correct layer?"""
    CHECKS[kind](CORRECT[kind][1], seed=3, batch=2, input_size=3, hidden=4, length=6)
    CHECKS[kind](CORRECT[kind][1], seed=4, batch=1, input_size=2, hidden=2, length=1)
    assert "length=1" in capsys.readouterr().out


@pytest.mark.parametrize("kind,fn,phrase", [(k, f, p) for k, rows in W.LAYER_MISTAKES.items() for f, p in rows],
                         ids=lambda v: getattr(v, "__name__", None) if callable(v) else None)
def test_named_layer_mistake(kind, fn, phrase):
    """Is each deliberately wrong layer named by its mistake?"""
    msg = W.failure_message(CHECKS[kind], fn)
    assert msg.startswith(f"{kind}_layer: ") and phrase in msg, msg


@pytest.mark.parametrize("kind,cell,phrase", [(k, f, p) for k, rows in W.CELL_MISTAKES.items() for f, p in rows],
                         ids=lambda v: getattr(v, "__name__", None) if callable(v) else None)
def test_cell_mistake_inside_a_layer(kind, cell, phrase):
    """Does a correct loop around a wrong cell get the cell's mistake named?"""
    msg = W.failure_message(CHECKS[kind], W.layer_from_cell(cell, lstm=kind == "lstm"))
    assert phrase in msg, msg


def test_none_initial_state_is_tested():
    """Is a layer that cannot take h0=None told that None means zeros?"""
    msg = W.failure_message(check_rnn_layer, W.rnn_layer_no_none)
    assert "raised" in msg and "h0=None" in msg and "starts from zeros" in msg


def test_batch_first_output_fails_on_shape():
    """Is a batch-first output rejected on its shape, with each axis named?"""
    msg = W.failure_message(check_lstm_layer, W.lstm_layer_batch_first)
    assert "expected output of shape (time=4, batch=3, hidden=5), got (3, 4, 5)" in msg


def test_unnamed_error_after_first_step_points_at_the_carry():
    """When step 0 is right and later steps are not, does the message point at passing the state on?"""
    def layer(xs, h0, w_ih, w_hh, b_ih, b_hh):
        h = torch.zeros(xs.shape[1], w_hh.shape[1]) if h0 is None else h0
        outs = []
        for x in xs:
            h = reference.rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh)
            outs.append(h)
            h = 0.5 * h                     # an unusual bug no catalogue entry describes
        return torch.stack(outs), outs[-1]
    msg = W.failure_message(check_rnn_layer, layer)
    assert "right up to step 0 and wrong from step 1 on" in msg, msg


def test_unnamed_wrong_h_n_only():
    """When output is right but h_n is not, does the message say h_n should be output[-1]?"""
    def layer(xs, h0, w_ih, w_hh, b_ih, b_hh):
        out, h_n = W.layer_from_cell(reference.gru_cell)(xs, h0, w_ih, w_hh, b_ih, b_hh)
        return out, h_n.flip(0)
    msg = W.failure_message(check_gru_layer, layer)
    assert "output is right" in msg and "output[-1]" in msg, msg


def test_output_as_a_list_of_steps():
    """Is an output left as a Python list of per-step tensors refused, with torch.stack suggested?"""
    def layer(xs, h0, w_ih, w_hh, b_ih, b_hh):
        out, h_n = W.layer_from_cell(reference.rnn_cell)(xs, h0, w_ih, w_hh, b_ih, b_hh)
        return list(out), h_n
    msg = W.failure_message(check_rnn_layer, layer)
    assert "rnn_layer: output is a list of 4 items where a single tensor is expected (torch.stack turns" in msg


@pytest.mark.parametrize("kind,fn,phrase", [(k, f, p) for k, rows in W.LOOP_MISTAKES.items() for f, p in rows],
                         ids=lambda v: None)
def test_wrong_loop_around_a_right_cell_is_told_about_the_loop(kind, fn, phrase):
    """Is a layer whose cell is right but whose loop is wrong told what is wrong with the loop, never to fix the
    cell (issue 18)?"""
    msg = W.failure_message(CHECKS[kind], fn)
    assert phrase in msg, msg
    assert f"check_{kind}_cell" not in msg, msg


def test_cell_bug_is_still_blamed_on_the_cell():
    """Does a correct loop around a cell that no catalogue entry describes still send the student to the cell?"""
    def odd_cell(x, h, w_ih, w_hh, b_ih, b_hh):
        return torch.tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh) * 0.9
    msg = W.failure_message(check_rnn_layer, W.layer_from_cell(odd_cell))
    assert "run check_rnn_cell on your cell" in msg, msg


@pytest.mark.parametrize("kind", CHECKS)
def test_visible_check_has_batch_one_and_length_one(kind, capsys):
    """Does the visible check itself run a batch of 1 and a sequence of length 1, so that a layer that squeezes
    fails in Validate and not only at grading?"""
    CHECKS[kind](CORRECT[kind][0])
    assert "batch=1, length=1" in capsys.readouterr().out


def test_rerun_hint_reproduces_a_hidden_failure():
    """Does a failure of a check called with options end with the exact call that reproduces it?"""
    bad = W.LOOP_MISTAKES["rnn"][-1][0]           # squeezes: fails only on batch 1
    msg = W.failure_message(check_rnn_layer, bad, seed=5, batch=1, length=9)
    assert msg.endswith("To rerun this check in your notebook: checkers.check_rnn_layer(layer, seed=5, batch=1, "
                        "length=9)."), msg
