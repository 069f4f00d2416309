"""Tests of course_lib.checkers.gradients: is a gradient-norm measurement checked against autograd, and is each
named mistake, written the way a student would, named in the message?"""
from __future__ import annotations

import pytest
import torch

from course_lib import checkers
from course_lib.checkers import CheckFailed


def failure(check, *args, **kwargs) -> str:
    with pytest.raises(CheckFailed) as info:
        check(*args, **kwargs)
    return str(info.value)


def not_written(*args, **kwargs):
    raise NotImplementedError()


def _states(xs, h0, w_ih, w_hh, b_ih, b_hh):
    h, hs = h0.clone().requires_grad_(), []
    for x_t in xs:
        h = torch.tanh(x_t @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
        hs.append(h)
    return hs


def norms_right(*args):
    hs = _states(*args)
    return torch.stack([g.norm() for g in torch.autograd.grad(hs[-1].sum(), hs)])


def norms_reversed(*args):
    return norms_right(*args).flip(0)


def norms_mean(*args):
    hs = _states(*args)
    return torch.stack([g.norm() for g in torch.autograd.grad(hs[-1].mean(), hs)])


def norms_list(*args):
    return [float(v) for v in norms_right(*args)]


def test_state_gradient_norms_accepts_autograd_and_agrees_with_a_hand_computed_case(capsys):
    checkers.check_state_gradient_norms(norms_right)
    assert "matches autograd" in capsys.readouterr().out
    # Hand-worked: a linear-ish 1-unit RNN with w_hh = 0 cuts every path back: norms = [0, ..., 0, 1].
    xs, h0 = torch.randn(3, 1, 1), torch.zeros(1, 1)
    z = torch.zeros(1, 1)
    assert norms_right(xs, h0, torch.ones(1, 1), z, torch.zeros(1), torch.zeros(1)).tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("fn, words", [
    (norms_reversed, "reverse order"),
    (norms_mean, "averaged (mean) instead of summed"),
    (norms_list, "torch.stack"),
    (not_written, "not implemented yet"),
])
def test_state_gradient_norms_names_the_mistake(fn, words):
    assert words in failure(checkers.check_state_gradient_norms, fn)


def test_state_gradient_norms_unnamed_mistake_says_what_the_last_norm_should_be():
    """A wrong answer no catalogue entry fits: is the student told that norms[-1] is sqrt(N·H) (N=2, H=4)?"""
    message = failure(checkers.check_state_gradient_norms, lambda *args: 1.1 * norms_right(*args))
    assert "norms[-1] should be sqrt(N·H) = 2.828, the norm of ∂s/∂h_{L-1} (all ones)" in message, message
