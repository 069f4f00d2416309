"""Tests of course_lib.checkers.keras_torch: one forecaster in PyTorch and in Keras, weights moved across, and
training to a target; the right implementations are checked against torch and a Keras model loaded by
course_lib.convert, and each named mistake, written the way a student would, is named in the message."""
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
