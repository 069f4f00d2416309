"""Tests of course_lib.checkers.backward: BPTT by hand, graded against autograd."""
from typing import NamedTuple

import pytest
import torch

import wrong_impls as W
from course_lib import reference
from course_lib.checkers import check_lstm_backward, check_rnn_backward

CHECKS = {"rnn": check_rnn_backward, "lstm": check_lstm_backward}


def rnn_backward_via_nn(xs, h0, w_ih, w_hh, b_ih, b_hh, grad_hs):
    """Autograd through torch.nn.RNN: the same numbers by a route that shares no code with the checker."""
    module = torch.nn.RNN(w_ih.shape[1], w_hh.shape[1])
    with torch.no_grad():
        for p, w in zip(module.parameters(), (w_ih, w_hh, b_ih, b_hh)):
            p.copy_(w)
    xs, h0 = xs.clone().requires_grad_(), h0.clone().requires_grad_()
    hs, _ = module(xs, h0[None])
    grads = torch.autograd.grad((hs * grad_hs).sum(), [xs, h0, *module.parameters()])
    return list(grads)


def lstm_backward_via_nn_as_dict(xs, h0, c0, w_ih, w_hh, b_ih, b_hh, grad_hs):
    module = torch.nn.LSTM(w_ih.shape[1], w_hh.shape[1])
    with torch.no_grad():
        for p, w in zip(module.parameters(), (w_ih, w_hh, b_ih, b_hh)):
            p.copy_(w)
    leaves = [xs.clone().requires_grad_(), h0.clone().requires_grad_(), c0.clone().requires_grad_()]
    hs, _ = module(leaves[0], (leaves[1][None], leaves[2][None]))
    g = torch.autograd.grad((hs * grad_hs).sum(), [*leaves, *module.parameters()])
    return {"xs": g[0], "h0": g[1], "c0": g[2], "w_ih": g[3], "w_hh": g[4], "b_ih": g[5], "b_hh": g[6]}


class Grads(NamedTuple):
    input: torch.Tensor
    h0: torch.Tensor
    w_ih: torch.Tensor
    w_hh: torch.Tensor
    b_ih: torch.Tensor
    b_hh: torch.Tensor


def rnn_backward_namedtuple(*args):
    return Grads(*reference.rnn_bptt(*args))


@pytest.mark.parametrize("kind,fn", [("rnn", reference.rnn_bptt), ("rnn", rnn_backward_via_nn),
                                     ("rnn", rnn_backward_namedtuple), ("lstm", reference.lstm_bptt),
                                     ("lstm", lstm_backward_via_nn_as_dict)])
def test_correct_backward_passes(kind, fn, capsys):
    """Do hand-written BPTT and torch.nn autograd pass, returned as a tuple, list, NamedTuple or dict?"""
    assert CHECKS[kind](fn) is None
    n = 7 if kind == "lstm" else 6
    assert capsys.readouterr().out == (f"{kind}_backward: all {n} gradients match autograd on 2 random cases "
                                       f"(length=4, batch=3, input=4, hidden=5).\n")


@pytest.mark.parametrize("kind", CHECKS)
def test_other_seeds_and_shapes(kind):
    """Do other seeds and shapes pass?"""
    fn = reference.lstm_bptt if kind == "lstm" else reference.rnn_bptt
    CHECKS[kind](fn, seed=11, batch=2, input_size=5, hidden=3, length=6)


@pytest.mark.parametrize("kind,fn,phrase", [(k, f, p) for k, rows in W.BACKWARD_MISTAKES.items() for f, p in rows],
                         ids=lambda v: getattr(v, "__name__", None) if callable(v) else None)
def test_named_backward_mistake(kind, fn, phrase):
    """Is each deliberately wrong BPTT named by its mistake?"""
    msg = W.failure_message(CHECKS[kind], fn)
    assert msg.startswith(f"{kind}_backward: ") and phrase in msg, msg


def test_not_accumulated_names_the_weight_gradients():
    """Does "not accumulated" come with which gradients are wrong and which are right?"""
    msg = W.failure_message(check_rnn_backward, W.rnn_backward_assigns)
    assert "dL/dw_ih" in msg and "dL/dw_hh" in msg and "+=" in msg


def test_only_w_hh_not_accumulated_is_named_per_gradient():
    """If only dL/dw_hh is overwritten instead of summed, is that gradient named and the others called right?"""
    def backward(xs, h0, w_ih, w_hh, b_ih, b_hh, grad_hs):
        g = reference.rnn_bptt(xs, h0, w_ih, w_hh, b_ih, b_hh, grad_hs)
        single = W.rnn_backward_assigns(xs, h0, w_ih, w_hh, b_ih, b_hh, grad_hs)
        return g.input, g.h0, g.w_ih, single[3], g.b_ih, g.b_hh
    msg = W.failure_message(check_rnn_backward, backward)
    assert msg.startswith("rnn_backward: dL/dw_hh differs from autograd, while dL/dxs, dL/dh0, dL/dw_ih,"), msg
    assert "dL/dw_hh: the gradient is not accumulated over time steps" in msg


def test_wrong_w_hh_alone_points_at_h_prev():
    """When only dL/dw_hh is wrong in an unnamed way, does the message say dL/dw_ih is right and point at h_{t-1}?"""
    def backward(*args):
        g = reference.rnn_bptt(*args)
        return g._replace(w_hh=g.w_hh * 1.5)
    msg = W.failure_message(check_rnn_backward, backward)
    assert "dL/dw_hh differs from autograd" in msg and "dL/dw_ih" in msg and "are right" in msg
    assert "h_{t-1}" in msg


def test_wrong_h0_alone():
    """Is a missing dL/dh0 named, with everything else right?"""
    msg = W.failure_message(check_rnn_backward, W.rnn_backward_zero_h0_grad)
    assert msg.startswith("rnn_backward: dL/dh0 differs from autograd")
    assert "dL/dxs, dL/dw_ih, dL/dw_hh, dL/db_ih and dL/db_hh are right" in msg and "da_0 @ w_hh" in msg


@pytest.mark.parametrize("result,phrase", [
    (None, "returned None — did you forget `return`?"),
    ((torch.zeros(1),) * 5, "returned 5 gradients; expected 6, in the order (input, h0, w_ih, w_hh, b_ih, b_hh)"),
    ({"input": 0, "h0": 0}, "has no key 'w_ih'"),
    (torch.zeros(3), "returned a single tensor of shape (3,)"),
])
def test_bad_structure(result, phrase):
    """Is a result of the wrong structure refused with one sentence?"""
    assert phrase in W.failure_message(check_rnn_backward, lambda *args: result)


def test_bias_gradient_not_summed_over_batch_fails_on_shape():
    """Is a bias gradient of shape (N, H) refused on its shape?"""
    def backward(*args):
        g = reference.rnn_bptt(*args)
        return g._replace(b_ih=g.b_ih.expand(3, -1))
    msg = W.failure_message(check_rnn_backward, backward)
    assert "expected dL/db_ih of shape (hidden=5,), got (3, 5)" in msg
