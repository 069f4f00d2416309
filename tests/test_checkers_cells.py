"""Tests of course_lib.checkers.cells: do correct cells pass, and is every named mistake named?"""
import pytest
import torch

import wrong_impls as W
from course_lib import reference
from course_lib.checkers import check_gru_cell, check_lstm_cell, check_rnn_cell

CHECKS = {"rnn": check_rnn_cell, "lstm": check_lstm_cell, "gru": check_gru_cell}


# ---------------------------------------------------------------- correct cells, written independently

def rnn_cell_addmm(input, hx, w_ih, w_hh, b_ih, b_hh):
    return torch.tanh(torch.addmm(b_ih, input, w_ih.t()) + torch.addmm(b_hh, hx, w_hh.t()))


def lstm_cell_one_matmul(input, hx, w_ih, w_hh, b_ih, b_hh):
    """All four gates from a single matmul of [x, h] with [w_ih | w_hh]."""
    h, c = hx
    gates = torch.cat([input, h], dim=1) @ torch.cat([w_ih, w_hh], dim=1).T + (b_ih + b_hh)  # (N, 4H)
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def gru_cell_two_matmuls(input, hx, w_ih, w_hh, b_ih, b_hh):
    gi_r, gi_z, gi_n = (input @ w_ih.T + b_ih).chunk(3, dim=1)
    gh_r, gh_z, gh_n = (hx @ w_hh.T + b_hh).chunk(3, dim=1)
    r, z = torch.sigmoid(gi_r + gh_r), torch.sigmoid(gi_z + gh_z)
    n = torch.tanh(gi_n + r * gh_n)
    return (1 - z) * n + z * hx


def via_torch_module(cls):
    """A cell that loads the weights into torch.nn's own cell (its outputs require grad)."""
    def cell(input, hx, w_ih, w_hh, b_ih, b_hh):
        module = cls(w_ih.shape[1], w_hh.shape[1])
        with torch.no_grad():
            for p, w in zip((module.weight_ih, module.weight_hh, module.bias_ih, module.bias_hh),
                            (w_ih, w_hh, b_ih, b_hh)):
                p.copy_(w)
        return module(input, hx)
    return cell


CORRECT = {
    "rnn": [reference.rnn_cell, rnn_cell_addmm, via_torch_module(torch.nn.RNNCell)],
    "lstm": [reference.lstm_cell, lstm_cell_one_matmul, via_torch_module(torch.nn.LSTMCell)],
    "gru": [reference.gru_cell, gru_cell_two_matmuls, via_torch_module(torch.nn.GRUCell)],
}


@pytest.mark.parametrize("kind,fn", [(k, f) for k, fs in CORRECT.items() for f in fs])
def test_correct_cells_pass(kind, fn, capsys):
    """Does a correct cell (the reference, a student's one-matmul version, torch.nn's) pass with one line?"""
    assert CHECKS[kind](fn) is None
    out = capsys.readouterr().out
    assert out == f"{kind}_cell: correct on 3 random cases (batch=3, input=4, hidden=5, and one with input=hidden=5).\n"


@pytest.mark.parametrize("kind", CHECKS)
@pytest.mark.parametrize("options", [dict(seed=1), dict(seed=7, batch=1, input_size=2, hidden=3),
                                     dict(seed=2, batch=4, input_size=6, hidden=6)])
def test_other_seeds_and_shapes(kind, options, capsys):
    """Do hidden tests with other seeds and shapes pass a correct cell and report those shapes?"""
    CHECKS[kind](CORRECT[kind][1], **options)
    assert f"hidden={options.get('hidden', 5)}" in capsys.readouterr().out


# ---------------------------------------------------------------- named mistakes

@pytest.mark.parametrize("kind,fn,phrase", [(k, f, p) for k, rows in W.CELL_MISTAKES.items() for f, p in rows],
                         ids=lambda v: getattr(v, "__name__", None) if callable(v) else None)
def test_named_mistake(kind, fn, phrase):
    """Is each deliberately wrong cell named by its mistake in the message?"""
    msg = W.failure_message(CHECKS[kind], fn)
    assert msg.startswith(f"{kind}_cell: ")
    assert phrase in msg, msg


@pytest.mark.parametrize("fn,phrase", [(W.lstm_cell_i_f_swapped, "input and forget gates"),
                                       (W.lstm_cell_returns_c_h, "(c, h) instead of (h, c)"),
                                       (W.lstm_cell_w_ih_transposed, "w_ih looks transposed")])
def test_named_mistake_at_other_shapes(fn, phrase):
    """Is a mistake still named at another seed and other sizes?"""
    assert phrase in W.failure_message(check_lstm_cell, fn, seed=5, batch=2, input_size=3, hidden=6)


def test_swapped_gates_message_explains_the_layout():
    """Does the message for swapped gates say how the gate blocks are stacked, and where it differs?"""
    msg = W.failure_message(check_lstm_cell, W.lstm_cell_i_f_swapped)
    assert "i | f | g | o" in msg and "by up to" in msg and "[batch=" in msg


def test_unnamed_wrong_lstm_cell_says_c_is_right():
    """When only h is wrong in an unnamed way, does the message say c is right and point at h = o ⊙ tanh(c)?"""
    def cell(input, hx, w_ih, w_hh, b_ih, b_hh):
        h, c = reference.lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh)
        return h * 0.9, c
    msg = W.failure_message(check_lstm_cell, cell)
    assert "h differs from the reference" in msg and "c is right" in msg and "tanh(c_t)" in msg


def test_shape_error_gets_a_matmul_hint():
    """Does a student's shape error come back with the call's shapes and a hint about matmul order?"""
    msg = W.failure_message(check_rnn_cell, W.matmul_wrong_order)
    assert "raised RuntimeError" in msg and "input=(3, 5)" in msg and "x_t @ W.T" in msg
