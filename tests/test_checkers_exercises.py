"""The checkers the exercises need beyond the cell/layer/backward/attention/clipping ones.

Each named mistake has a deliberately wrong implementation here, written the way a student would,
and the test asserts that the message names it; the right implementations are checked against
torch (autograd, nn.GRU's own parameters, a Keras model loaded by course_lib.convert).
"""
from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from course_lib import checkers
from course_lib.checkers import CheckFailed

os.environ.setdefault("KERAS_BACKEND", "torch")


def failure(check, *args, **kwargs) -> str:
    with pytest.raises(CheckFailed) as info:
        check(*args, **kwargs)
    return str(info.value)


def not_written(*args, **kwargs):
    raise NotImplementedError()


# ----------------------------------------------------------------------------- state_gradient_norms

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


# ----------------------------------------------------------------------------- check_parameter_count

def count_right(i, h, n):
    return sum(3 * (h * (i if k == 0 else h) + h * h + 2 * h) for k in range(n))


@pytest.mark.parametrize("fn, words", [
    (lambda i, h, n: sum(3 * (h * (i if k == 0 else h) + h * h + h) for k in range(n)), "one bias vector"),
    (lambda i, h, n: sum(3 * (h * i + h * h + 2 * h) for k in range(n)), "layers above the first"),
    (lambda i, h, n: sum(4 * (h * (i if k == 0 else h) + h * h + 2 * h) for k in range(n)), "that of an LSTM"),
    (lambda i, h, n: float(count_right(i, h, n)), "an int"),
    (not_written, "not implemented yet"),
])
def test_parameter_count_names_the_mistake(fn, words):
    assert words in failure(checkers.check_parameter_count, fn, kind="gru")


def test_parameter_count_accepts_the_count_of_nn_gru(capsys):
    checkers.check_parameter_count(count_right, kind="gru")
    assert sum(p.numel() for p in nn.GRU(7, 4, num_layers=3).parameters()) == count_right(7, 4, 3)


# ----------------------------------------------------------------------------- keras and torch

def _model(weights):
    w_ih, w_hh, b_ih, b_hh, w_out, b_out = weights
    lstm, head = nn.LSTM(1, w_hh.shape[1], batch_first=True), nn.Linear(w_hh.shape[1], 1)
    with torch.no_grad():
        for p, w in zip([lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0, head.weight,
                         head.bias], weights):
            p.copy_(w)
    return lstm, head


def forecasts_right(weights, x):
    lstm, head = _model(weights)
    with torch.no_grad():
        return head(lstm(x)[0][:, -1])


def forecasts_first_step(weights, x):
    lstm, head = _model(weights)
    with torch.no_grad():
        return head(lstm(x)[0][:, 0])


def forecasts_every_step(weights, x):
    lstm, head = _model(weights)
    with torch.no_grad():
        return head(lstm(x)[0])


def keras_forecasts(weights, x, *, bias="sum"):
    import keras
    w_ih, w_hh, b_ih, b_hh, w_out, b_out = weights
    model = keras.Sequential([keras.Input((None, 1)), keras.layers.LSTM(w_hh.shape[1]), keras.layers.Dense(1)])
    b = {"sum": b_ih + b_hh, "ih": b_ih}[bias]
    model.layers[0].set_weights([w_ih.T.numpy(), w_hh.T.numpy(), b.numpy()])
    model.layers[1].set_weights([w_out.T.numpy(), b_out.numpy()])
    return keras.ops.convert_to_numpy(model(x.numpy()))


def test_forecaster_accepts_torch_and_keras_models_holding_the_weights(capsys):
    checkers.check_forecaster(forecasts_right)
    checkers.check_forecaster(keras_forecasts)       # a NumPy float32 array is a fine answer
    assert capsys.readouterr().out.count("the same forecasts") == 2


@pytest.mark.parametrize("fn, words", [
    (forecasts_first_step, "first time step"),
    (forecasts_every_step, "a forecast for every time step"),
    (lambda weights, x: keras_forecasts(weights, x, bias="ih"), "bias b_hh is missing"),
    (not_written, "not implemented yet"),
])
def test_forecaster_names_the_mistake(fn, words):
    assert words in failure(checkers.check_forecaster, fn)


@pytest.mark.parametrize("fn, words", [
    (lambda w_ih, w_hh, b_ih, b_hh: (w_ih.T, w_hh.T, b_ih), "b_hh is missing"),
    (lambda w_ih, w_hh, b_ih, b_hh: (w_ih.reshape(w_ih.shape[1], -1), w_hh.reshape(w_hh.shape[1], -1), b_ih + b_hh),
     "reshaped instead of transposed"),
    (lambda w_ih, w_hh, b_ih, b_hh: (w_ih, w_hh, b_ih + b_hh), "wrong way round"),
])
def test_torch_to_keras_weights_names_the_mistake(fn, words):
    assert words in failure(checkers.check_torch_to_keras_weights, fn)


def test_torch_to_keras_weights_accepts_transposes_and_the_summed_bias():
    checkers.check_torch_to_keras_weights(lambda w_ih, w_hh, b_ih, b_hh: (w_ih.T, w_hh.T, b_ih + b_hh))


def _train(x, y, *, epochs=5, lr=1e-2):
    torch.manual_seed(0)
    lstm, head = nn.LSTM(1, 16, batch_first=True), nn.Linear(16, 1)
    params = [lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0, head.weight, head.bias]
    opt = torch.optim.Adam(params, lr=lr)
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(32):
            loss = nn.functional.mse_loss(head(lstm(x[idx])[0][:, -1]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return tuple(params)                    # nn.Parameter objects, as a student returns them


def _train_returns_weights_from_before(x, y):
    """Trains (one epoch, the loss goes down) but returns clones taken before the loop."""
    torch.manual_seed(0)
    lstm, head = nn.LSTM(1, 16, batch_first=True), nn.Linear(16, 1)
    params = [lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0, head.weight, head.bias]
    result = tuple(p.detach().clone() for p in params)      # bug: copied before training
    opt = torch.optim.Adam(params, lr=1e-2)
    for idx in torch.randperm(len(x)).split(32):
        loss = nn.functional.mse_loss(head(lstm(x[idx])[0][:, -1]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return result


@pytest.mark.slow
def test_training_reaches_or_misses_the_target():
    """Does a trained forecaster pass, and is an undertrained one told it is above the seasonal-naive baseline?"""
    checkers.check_training(_train, target_mse=0.03)
    checkers.check_training(lambda x, y: _train(x, y, epochs=10))
    base = checkers.forecast_baselines()
    assert base["seasonal naive"] < base["last value"]
    assert "above the seasonal-naive baseline" in failure(checkers.check_training,
                                                          lambda x, y: _train(x, y, epochs=1, lr=1e-4))
    assert "above the target 0.03" in failure(checkers.check_training, lambda x, y: _train(x, y, epochs=1, lr=1e-4),
                                              target_mse=0.03)
    assert "expected a tuple (w_ih, w_hh, b_ih, b_hh, w_out, b_out)" in failure(
        checkers.check_training, lambda x, y: _train(x, y)[:5])


def test_training_that_returns_weights_from_before_the_loop_is_told_so():
    """A training function that clones the weights before its loop must not be told to train longer (issue 18)."""
    msg = failure(checkers.check_training, _train_returns_weights_from_before)
    assert "look like the weights before training" in msg, msg
    assert "Return the parameters after the training loop" in msg, msg


def forecasts_from_h_n(weights, x):
    """Applies the head to h_n, (num_layers, N, H): a forecast of shape (1, N, 1)."""
    lstm, head = _model(weights)
    with torch.no_grad():
        _, (h_n, _) = lstm(x)
        return head(h_n)


def test_forecaster_head_on_h_n_is_told_about_the_layer_axis():
    """Is a head applied to h_n told about h_n's layer axis, not about a forecast for every time step (issue 18)?"""
    msg = failure(checkers.check_forecaster, forecasts_from_h_n)
    assert "h_n" in msg and "layer axis" in msg and "every time step" not in msg, msg


@pytest.mark.parametrize("fn, words", [
    (lambda kind, i, b: _largest_under(kind, i, b, strict=True), "use <= where you used <"),
    (lambda kind, i, b: _largest_under(kind, i, b) + 1, "smallest size that exceeds the budget"),
    (lambda kind, i, b: _largest_under({"gru": "lstm", "lstm": "gru"}[kind], i, b), "other kind"),
    (lambda kind, i, b: float(_largest_under(kind, i, b)), "an int"),
    (not_written, "not implemented yet"),
])
def test_hidden_for_budget_names_the_mistake(fn, words):
    assert words in failure(checkers.check_hidden_for_budget, fn)


def _largest_under(kind, input_size, budget, strict=False):
    module = {"gru": nn.GRU, "lstm": nn.LSTM}[kind]
    H = 0
    while True:
        n = sum(p.numel() for p in module(input_size, H + 1).parameters())
        if n > budget or (strict and n == budget):
            return H
        H += 1


def test_hidden_for_budget_accepts_the_largest_size_within_the_budget(capsys):
    checkers.check_hidden_for_budget(_largest_under)
    assert "largest hidden size within the budget" in capsys.readouterr().out
