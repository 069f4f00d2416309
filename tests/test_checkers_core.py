"""Tests of course_lib.checkers._core and _engine: bad inputs get one clear sentence, and tricks fail.

Every test feeds a bad or tricky function to a checker and asserts on the sentence a student reads.
"""
import os
import re

import pytest
import torch

import wrong_impls as W
from course_lib import reference
from course_lib.checkers import CheckFailed, check_lstm_cell, check_rnn_cell

CHECKERS_DIR = os.path.dirname(__import__("course_lib.checkers").checkers.__file__)


@pytest.mark.parametrize("fn,phrase", [
    (3, "rnn_cell: expected a function rnn_cell(input, hx, w_ih, w_hh, b_ih, b_hh), got int"),
    (torch.zeros(3, 3), "got torch.Tensor (tensor([[0., 0., 0.], [0., 0., 0.], [0., 0., 0.]]))"),
    (W.takes_three_args, "your function takes (input, hx, w_ih) but the exercise calls it as "
                         "rnn_cell(input, hx, w_ih, w_hh, b_ih, b_hh) (6 positional arguments)"),
    (W.returns_none, "rnn_cell: your rnn_cell returned None — did you forget `return`?"),
    (W.raises_value_error, "rnn_cell: your rnn_cell raised ValueError: not implemented yet (line "),
    (W.rnn_cell_float64, "rnn_cell: expected h to be float32, got float64"),
    (W.rnn_cell_numpy_float64, "expected h to be float32, got float64 (NumPy computes in float64 by default)"),
    (W.rnn_cell_transposed_output, "rnn_cell: expected h of shape (batch=3, hidden=5), got (5, 3) — the axes are "
                                   "the wrong way round"),
    (W.rnn_cell_extra_axis, "rnn_cell: expected h of shape (batch=3, hidden=5), got (1, 3, 5)"),
    (W.rnn_cell_returns_list, "rnn_cell: your rnn_cell returned a list of 3 items where a single tensor h is expected"),
    (W.rnn_cell_returns_tuple, "returned a tuple of 2 items where a single tensor h is expected"),
    (W.rnn_cell_nan, "rnn_cell: h contains non-finite values (15 NaN, 0 inf; the first at [batch=0, hidden=0])"),
    (W.rnn_cell_modifies_w_hh, "rnn_cell: your rnn_cell modified its argument w_hh in place"),
    (W.rnn_cell_modifies_input, "modified its argument input in place"),
    (W.rnn_cell_lying_tensor, "h is a wrong_impls.LyingTensor, a subclass of torch.Tensor; return a plain "
                              "torch.Tensor"),
    (W.rnn_cell_always_equal, "h is a wrong_impls.AlwaysEqual; expected a torch.Tensor of shape (batch=3, hidden=5)"),
    (W.rnn_cell_sneaky_array, "h is a wrong_impls.SneakyArray, a subclass of numpy.ndarray"),
])
def test_bad_rnn_cell(fn, phrase):
    """Does each bad input or trick get its one sentence?"""
    msg = W.failure_message(check_rnn_cell, fn)
    assert phrase in msg, msg


@pytest.mark.parametrize("fn,phrase", [
    (W.lstm_cell_returns_h_only, "lstm_cell: your lstm_cell returned a single tensor of shape (3, 5); expected a "
                                 "tuple (h, c)"),
    (W.lstm_cell_returns_three, "returned a tuple of 3 items; expected a tuple (h, c)"),
    (W.lstm_cell_modifies_c, "modified its argument hx[1] in place"),
    (W.lstm_cell_lying_tuple, "returned None in place of h"),
])
def test_bad_lstm_cell(fn, phrase):
    """Are structure mistakes and in-place state updates of an LSTM cell named?"""
    msg = W.failure_message(check_lstm_cell, fn)
    assert phrase in msg, msg


def test_exception_message_shows_the_call():
    """Does a student's exception come back with the shapes of the call and the student's own line?"""
    msg = W.failure_message(check_rnn_cell, W.raises_value_error)
    assert "in raises_value_error: `raise ValueError(\"not implemented yet\")`" in msg
    assert "when called with input=(3, 5), hx=(3, 5), w_ih=(5, 5), w_hh=(5, 5), b_ih=(5,), b_hh=(5,)" in msg


def test_failure_has_no_traceback_from_inside_the_checkers():
    """Does CheckFailed come without a chained exception and with at most one frame inside course_lib.checkers?"""
    with pytest.raises(CheckFailed) as info:
        check_rnn_cell(W.raises_value_error)
    exc = info.value
    assert isinstance(exc, AssertionError)
    assert exc.__cause__ is None and exc.__suppress_context__
    frames, tb = [], exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    assert sum(f.startswith(CHECKERS_DIR) for f in frames) == 1


def test_a_mode_left_on_is_caught_and_removed():
    """Is a function that leaves a torch function mode on refused, and the mode taken off again?"""
    depth = torch._C._len_torch_function_stack()
    msg = W.failure_message(check_rnn_cell, W.rnn_cell_leaves_mode_on)
    assert "left a torch function or dispatch mode switched on" in msg
    assert torch._C._len_torch_function_stack() == depth
    assert float((torch.ones(2) - torch.zeros(2)).sum()) == 2.0


def test_global_switches_are_restored(capsys):
    """Does a correct cell that switches autograd off pass, with autograd switched back on afterwards?"""
    check_rnn_cell(W.rnn_cell_turns_grad_off)
    assert torch.is_grad_enabled()


def test_exact_numpy_array_is_accepted(capsys):
    """Is a correct result returned as an exact float32 numpy.ndarray accepted?"""
    check_rnn_cell(W.rnn_cell_numpy)
    assert capsys.readouterr().out.startswith("rnn_cell: correct on 3 random cases")


def test_output_that_requires_grad_is_accepted(capsys):
    """Is a correct result that is part of an autograd graph accepted?"""
    def cell(input, hx, w_ih, w_hh, b_ih, b_hh):
        return reference.rnn_cell(input, hx, w_ih.requires_grad_(), w_hh, b_ih, b_hh)
    check_rnn_cell(cell)
    assert "correct" in capsys.readouterr().out


def test_inputs_are_copies():
    """Does the student get copies, so that keeping and changing them later cannot change the expected values?"""
    kept = []

    def cell(input, hx, w_ih, w_hh, b_ih, b_hh):
        kept.append(w_ih)
        return reference.rnn_cell(input, hx, w_ih, w_hh, b_ih, b_hh)
    check_rnn_cell(cell)
    kept[0].zero_()
    check_rnn_cell(cell)


@pytest.mark.parametrize("option", [dict(batch=0), dict(hidden=2.5), dict(input_size=-1)])
def test_bad_checker_options(option):
    """Are bad shape options of the checker itself refused with a ValueError?"""
    with pytest.raises(ValueError, match="must be a positive int"):
        check_rnn_cell(reference.rnn_cell, **option)


def test_exception_without_a_message():
    """Does an exception without a message read cleanly?"""
    def cell(input, hx, w_ih, w_hh, b_ih, b_hh):
        raise ZeroDivisionError
    msg = W.failure_message(check_rnn_cell, cell)
    assert "your rnn_cell raised ZeroDivisionError (line " in msg


def test_the_exercise_stub_is_not_implemented_yet():
    """Is the notebook's untouched stub told to replace `raise NotImplementedError()`?"""
    def rnn_cell(input, hx, w_ih, w_hh, b_ih, b_hh):
        # YOUR CODE HERE
        raise NotImplementedError()
    assert W.failure_message(check_rnn_cell, rnn_cell) == (
        "rnn_cell: not implemented yet — replace raise NotImplementedError() in rnn_cell with your code.")


def test_mode_entered_before_raising_is_removed():
    """If the function enters a mode and then raises, is the exception reported and the mode taken off?"""
    depth = torch._C._len_torch_function_stack()

    def cell(input, hx, w_ih, w_hh, b_ih, b_hh):
        W.AllZerosMode().__enter__()
        raise RuntimeError("oops")
    assert "raised RuntimeError: oops" in W.failure_message(check_rnn_cell, cell)
    assert torch._C._len_torch_function_stack() == depth


def test_ipython_shows_the_students_cell_and_the_message_not_the_checkers_frames():
    """In a notebook (and nbgrader's Validate), does a failed check show the student's cell and the message,
    with no frame from inside course_lib.checkers (issue 18)?"""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shown = []
    shell._showtraceback = lambda etype, value, stb: shown.append(shell.InteractiveTB.stb2text(stb))
    shell.run_cell("from course_lib import checkers\n"
                   "def rnn_cell(input, hx, w_ih, w_hh, b_ih, b_hh):\n"
                   "    return (input @ w_ih.T + b_ih + hx @ w_hh.T + b_hh).relu()\n"
                   "checkers.check_rnn_cell(rnn_cell)\n")
    (text,) = [re.sub(r"\x1b\[[0-9;]*m", "", t) for t in shown]      # without the colours
    assert "checkers.check_rnn_cell(rnn_cell)" in text and "relu is used instead of tanh" in " ".join(text.split())
    assert "course_lib/checkers" not in text and "_core.py" not in text, text
    message = text[text.index("CheckFailed: rnn_cell"):]
    assert max(len(line) for line in message.splitlines()) <= 80, message   # whole in a terminal's Validate
