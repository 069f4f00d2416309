"""Tests for course_lib.measure.gradients: gradients and Jacobians through time, by lag."""
import pytest
import torch

from course_lib.measure.gradients import grad_norms_by_lag, jacobian_norms_by_lag, share_at_lag
from course_lib.models import ModelConfig, SequenceModel
from course_lib.train import loss_fn


def _model(kind, hidden=6, **kw):
    return SequenceModel(ModelConfig(kind=kind, input_size=2, hidden_size=hidden, **kw), seed=0)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_grad_norms_by_lag_agree_with_a_split_sequence(kind):
    """dL/dh_t measured another way: run the torch layer up to t, make h_t (and c_t) a leaf,
    run the rest of the sequence from it, and ask autograd for dL/dh_t."""
    model = _model(kind)
    x, y = torch.randn(3, 8, 2), torch.randn(3, 1)
    norms = grad_norms_by_lag(model, x, y)
    assert norms.shape == (8,)
    for t in [0, 3, 7]:                                  # 0-based step; lag = 7 - t
        _, state = model.core(x[:, :t + 1])
        if kind == "lstm":
            h_t = state[0].detach().requires_grad_()
            rest_state = (h_t, state[1].detach())
        else:
            h_t = state.detach().requires_grad_()
            rest_state = h_t
        if t < 7:
            out, _ = model.core(x[:, t + 1:], rest_state)
            last = out[:, -1]
        else:
            last = h_t[0]
        loss = loss_fn(model.head(last), y)
        (grad,) = torch.autograd.grad(loss, h_t)
        assert norms[7 - t].item() == pytest.approx(grad.norm().item(), rel=1e-4)


def test_rnn_jacobian_norms_equal_the_product_of_step_jacobians():
    """For a tanh RNN, ds_k/ds_{k-1} = diag(1 - h_k^2) W_hh: multiply them by hand and compare."""
    model = _model("rnn", hidden=5)
    x = torch.randn(3, 6, 2)
    norms = jacobian_norms_by_lag(model, x)
    with torch.no_grad():
        hs = model.hidden_states(x)                      # (N, L, H)
        W = model.core.weight_hh_l0
        product = torch.eye(5).expand(3, 5, 5)
        expected = [1.0]
        for s in range(5, 0, -1):                        # steps L-1 .. 1 (0-based), walking back in time
            product = product @ (torch.diag_embed(1 - hs[:, s] ** 2) @ W)
            expected.append(torch.linalg.matrix_norm(product, ord=2).mean().item())
    assert norms.tolist() == pytest.approx(expected, rel=1e-4)


def test_lstm_jacobian_norm_matches_autograd_functional_on_the_torch_layer():
    """LSTM state s = (h, c): the Jacobian of s_L with respect to s_t, by torch.autograd.functional."""
    model = _model("lstm", hidden=4)
    x = torch.randn(1, 5, 2)
    norms = jacobian_norms_by_lag(model, x)
    t = 1                                                # lag 3
    _, (h_t, c_t) = model.core(x[:, :t + 1])

    def rest(s):
        _, (h, c) = model.core(x[:, t + 1:], (s[:4].view(1, 1, 4), s[4:].view(1, 1, 4)))
        return torch.cat([h.view(-1), c.view(-1)])

    J = torch.autograd.functional.jacobian(rest, torch.cat([h_t.view(-1), c_t.view(-1)]).detach())
    assert norms[3].item() == pytest.approx(torch.linalg.matrix_norm(J, ord=2).item(), rel=1e-4)
    assert norms[0].item() == pytest.approx(1.0)


def test_share_at_lag_divides_by_the_signal_at_lag_zero():
    assert share_at_lag([2.0, 1.0, 0.02], 1) == pytest.approx(0.5)
    assert share_at_lag(torch.tensor([2.0, 1.0, 0.02]), 2) == pytest.approx(0.01)
    assert share_at_lag([3.0], 0) == 1.0
    with pytest.raises(ValueError, match=r"lag must be an integer in 0\.\.2"):
        share_at_lag([2.0, 1.0, 0.02], 3)
    with pytest.raises(ValueError, match="no signal at lag 0"):
        share_at_lag([0.0, 1.0], 1)
