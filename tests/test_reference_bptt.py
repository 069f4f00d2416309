"""Are the hand-written backward passes through time the true gradients?"""
import pytest
import torch
from torch import nn

from course_lib.reference import (LSTMWithManualBackward, RNNWithManualBackward, lstm, lstm_bptt, rnn,
                                  rnn_bptt, weights_of)

SHAPES = [(1, 1, 1, 1), (4, 3, 2, 5), (9, 2, 4, 3)]  # (length, batch, input, hidden)


def _inputs(L, N, H_in, H, kind, seed):
    torch.manual_seed(seed)
    net = (nn.LSTM if kind == "lstm" else nn.RNN)(H_in, H).double()
    w = [p.detach().clone().requires_grad_() for p in weights_of(net)[0]]
    xs = torch.randn(L, N, H_in, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(N, H, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(N, H, dtype=torch.float64, requires_grad=True)
    grad_hs = torch.randn(L, N, H, dtype=torch.float64)
    return xs, h0, c0, w, grad_hs


@pytest.mark.parametrize("L,N,H_in,H", SHAPES)
def test_rnn_bptt_matches_autograd(L, N, H_in, H):
    xs, h0, _, w, grad_hs = _inputs(L, N, H_in, H, "rnn", seed=L + N)
    out, _ = rnn(xs, h0.unsqueeze(0), [w])
    expected = torch.autograd.grad(out, (xs, h0, *w), grad_hs)
    ours = rnn_bptt(xs.detach(), h0.detach(), *[p.detach() for p in w], grad_hs)
    for name, a, b in zip(ours._fields, ours, expected, strict=True):
        assert (a - b).abs().max().item() < 1e-12, name


@pytest.mark.parametrize("L,N,H_in,H", SHAPES)
def test_lstm_bptt_matches_autograd(L, N, H_in, H):
    xs, h0, c0, w, grad_hs = _inputs(L, N, H_in, H, "lstm", seed=L + N)
    out, _ = lstm(xs, (h0.unsqueeze(0), c0.unsqueeze(0)), [w])
    expected = torch.autograd.grad(out, (xs, h0, c0, *w), grad_hs)
    ours = lstm_bptt(xs.detach(), h0.detach(), c0.detach(), *[p.detach() for p in w], grad_hs)
    for name, a, b in zip(ours._fields, ours, expected, strict=True):
        assert (a - b).abs().max().item() < 1e-12, name


def test_gradcheck_against_finite_differences():
    """torch.autograd.gradcheck compares the hand-written backward with numerical derivatives in float64."""
    xs, h0, c0, w, _ = _inputs(5, 2, 3, 4, "lstm", seed=0)
    assert torch.autograd.gradcheck(LSTMWithManualBackward.apply, (xs, h0, c0, *w))
    xs, h0, _, w, _ = _inputs(5, 2, 3, 4, "rnn", seed=1)
    assert torch.autograd.gradcheck(RNNWithManualBackward.apply, (xs, h0, *w))


def test_bptt_without_biases():
    xs, h0, c0, w, grad_hs = _inputs(3, 2, 2, 3, "lstm", seed=2)
    w_ih, w_hh = w[0], w[1]
    out, _ = lstm(xs, (h0.unsqueeze(0), c0.unsqueeze(0)), [(w_ih, w_hh, None, None)])
    expected = torch.autograd.grad(out, (xs, w_hh), grad_hs)
    ours = lstm_bptt(xs.detach(), h0.detach(), c0.detach(), w_ih.detach(), w_hh.detach(), None, None, grad_hs)
    assert ours.b_ih is None and ours.b_hh is None
    assert torch.allclose(ours.input, expected[0], atol=1e-12)
    assert torch.allclose(ours.w_hh, expected[1], atol=1e-12)


def test_only_the_last_step_loss_still_reaches_the_first_input():
    """A loss on h_L alone flows back to x_0: the gradient is non-zero but shrinks for a small-weight RNN."""
    torch.manual_seed(3)
    L, H = 30, 8
    w_ih, w_hh = torch.randn(H, 1, dtype=torch.float64), 0.3 * torch.randn(H, H, dtype=torch.float64) / H ** 0.5
    xs, h0 = torch.randn(L, 1, 1, dtype=torch.float64), torch.zeros(1, H, dtype=torch.float64)
    grad_hs = torch.zeros(L, 1, H, dtype=torch.float64)
    grad_hs[-1] = 1.0
    g = rnn_bptt(xs, h0, w_ih, w_hh, None, None, grad_hs).input.abs().flatten()
    assert g[0] > 0 and g[0] < 1e-6 * g[-1]
