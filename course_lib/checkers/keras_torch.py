"""Checkers for one forecaster built in PyTorch and in Keras 3, its weights moved across, and trained.

The model: an LSTM reads a window ``x`` (N, L, 1) and a linear layer maps its last hidden state to the
next value, (N, 1). Every checker talks to the student's code through plain tensors only (weights,
windows, forecasts), so the same checks run in the notebook and in a sandboxed grader:

- ``check_forecaster(fn)``: ``fn(weights, x) -> forecasts (N, 1)`` runs a model that holds
  ``weights = (w_ih, w_hh, b_ih, b_hh, w_out, b_out)`` (PyTorch's layout: ``nn.LSTM``'s four tensors,
  then ``nn.Linear``'s two). The notebook wraps the student's ``TorchForecaster``, or the Keras model
  after the student's ``copy_to_keras``, in such a function. The oracle is
  :func:`course_lib.reference.lstm` and ``h_L W_out^T + b_out``.
- ``check_torch_to_keras_weights(fn)``: ``fn(w_ih, w_hh, b_ih, b_hh) -> (kernel, recurrent_kernel,
  bias)`` moves one LSTM layer's weights into Keras's layout; the oracle is a real Keras LSTM loaded by
  :func:`course_lib.convert.reference_to_keras`.
- ``check_training(fn)``: ``fn(x_train, y_train) -> weights`` trains a fresh forecaster on windows of the
  course's seasonal series (made here from ``seed``); the forecaster holding those weights must reach a
  validation mean squared error below the seasonal-naive baseline (``forecast_baselines``), or ``target_mse``.

Keras runs on its PyTorch backend and is imported only when a checker needs it.
"""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .. import convert, data, reference
from ..reference import LayerWeights
from ._core import (Leaf, Randn, as_clean_tensor, call_student, check_callable, fail, positive_int,
                    student_facing, unpack_nested)
from ._engine import Builder, Case, Exercise, Mistake, grade

__all__ = ["check_forecaster", "check_torch_to_keras_weights", "check_training", "forecast_baselines"]


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    return keras


def _name(fn: Any, default: str) -> str:
    return getattr(fn, "__name__", default)


# ----------------------------------------------------------------------------- the forecaster

def forecaster_variant(weights, x, *, step: str = "last", time_major: bool = False, use_b_ih: bool = True,
                       use_b_hh: bool = True, use_b_out: bool = True) -> Tensor:
    """Forecasts (N, 1) of the LSTM + linear forecaster, with switches for the mistakes."""
    w_ih, w_hh, b_ih, b_hh, w_out, b_out = weights
    layer = [LayerWeights(w_ih, w_hh, b_ih if use_b_ih else None, b_hh if use_b_hh else None)]
    out, _ = reference.lstm(x, None, layer, batch_first=not time_major)   # (N, L, H) as the code reads it
    h = {"last": out[:, -1], "first": out[:, 0], "mean": out.mean(dim=1)}[step]   # (N, H)
    y = h @ w_out.T                                                                  # (N, 1)
    return y + b_out if use_b_out else y


def _fm(label: str, hint: str, **switches) -> Mistake:
    return Mistake(label, hint, lambda weights, x: forecaster_variant(weights, x, **switches))


_BIAS = ("An LSTM only ever adds b_ih + b_hh, so Keras keeps a single bias: copy bias = b_ih + b_hh (the sum). "
         "In torch, nn.LSTM keeps both.")
FORECASTER: tuple[Mistake, ...] = (
    _fm("the forecast is made from the first time step", "Use the last one: out[:, -1] (the Keras LSTM returns "
        "its last state by default).", step="first"),
    _fm("the forecast is made from the mean over time steps", "Use the last hidden state, out[:, -1].", step="mean"),
    _fm("the LSTM reads the windows as time-major", "The windows are (batch, time, 1): build nn.LSTM with "
        "batch_first=True (Keras is always batch-first).", time_major=True),
    _fm("the LSTM's bias b_hh is missing (only b_ih reached the model)", _BIAS, use_b_hh=False),
    _fm("the LSTM's bias b_ih is missing (only b_hh reached the model)", _BIAS, use_b_ih=False),
    _fm("the linear layer's bias is missing", "Copy the bias of the linear layer too (Dense: [kernel, bias]).",
        use_b_out=False),
)


def _draw_weights(rand: Randn, H: int) -> tuple[Tensor, ...]:
    return (rand(4 * H, 1, scale=0.5), rand(4 * H, H, scale=0.5), rand(4 * H, scale=0.5), rand(4 * H, scale=0.5),
            rand(1, H, scale=0.5), rand(1, scale=0.5))


def build_forecaster(name: str = "forecast", seed: int = 0, hidden_size: int = 4, batch: int = 3,
                     length: int = 6) -> tuple[Exercise, list[Case]]:
    """The forecaster exercise (the student's function called ``name``) and its two random models."""
    for k, v in (("hidden_size", hidden_size), ("batch", batch), ("length", length)):
        positive_int(k, v)
    rand = Randn(seed)
    cases = []
    for H, N in ((hidden_size, batch), (hidden_size + 1, 1)):
        args = {"weights": _draw_weights(rand, H), "x": rand(N, length, 1)}
        case = Case(args, [Leaf("forecast", (("batch", N), ("output", 1)))], [],
                    f"hidden={H}, batch={N}, length={length}, seed={seed}")
        case.expected = [forecaster_variant(*case.args64().values()).double()]
        cases.append(case)

    def unpack(result: Any, case: Case) -> list[Any]:
        shape = tuple(getattr(result, "shape", ()))
        N, L = case.args["x"].shape[:2]
        if len(shape) == 3 and shape[0] == 1 and shape[1:] == (N, 1) and (N, L) != (1, 1):
            fail(f"{name}: the model returned {shape}: the head was applied to h_n, whose first axis is the LSTM's "
                 f"layer axis (num_layers, batch, hidden), not to a (batch, hidden) state. Use h_n[-1], the last "
                 f"layer's state (or out[:, -1]), to get a (batch, 1) forecast.")
        if len(shape) == 3:
            fail(f"{name}: the model returned {shape}, a forecast for every time step; the forecaster reads only "
                 f"the last step, giving (batch, 1) (in torch apply the head to out[:, -1]; in Keras keep the "
                 f"LSTM's default return_sequences=False).")
        return list(unpack_nested(result, "forecast", name).values())

    ex = Exercise(name, ("weights", "x"), unpack, FORECASTER,
                  lambda case, got, mism: ("The forecast is W_out h_L + b_out, with h_L the LSTM's hidden state "
                                           "after the last step of each window."),
                  oracle_name="the reference LSTM and linear layer",
                  passed=f"the same forecasts as the reference on {len(cases)} random models "
                         f"(hidden={hidden_size} and {hidden_size + 1}, windows of {length} steps)")
    return ex, cases


@student_facing
def check_forecaster(fn: Any, *, seed: int = 0, hidden_size: int = 4, batch: int = 3, length: int = 6) -> None:
    """Grade ``fn(weights, x) -> (N, 1)``, the forecasts of an LSTM + linear model holding ``weights``.

    ``weights = (w_ih, w_hh, b_ih, b_hh, w_out, b_out)`` in PyTorch's layout; ``x`` is (N, L, 1).
    Prints one line on success; raises :class:`CheckFailed` with what to fix otherwise.
    """
    grade(fn, *build_forecaster(_name(fn, "forecast"), seed, hidden_size, batch, length))


# ----------------------------------------------------------------------------- one layer's weights

def _to_keras_variant(w_ih, w_hh, b_ih, b_hh, *, bias="sum", order="ifgo", transpose="T"):
    """(kernel, recurrent_kernel, bias) with switches for the mistakes."""
    blocks = dict(zip("ifgo", range(4)))

    def reorder(t: Tensor) -> Tensor:
        parts = t.chunk(4, dim=0)
        return torch.cat([parts[blocks[g]] for g in order], dim=0)

    w_ih, w_hh, b_ih, b_hh = reorder(w_ih), reorder(w_hh), reorder(b_ih), reorder(b_hh)
    if transpose == "T":
        kernel, recurrent = w_ih.T, w_hh.T
    else:
        kernel, recurrent = w_ih.reshape(w_ih.shape[1], -1), w_hh.reshape(w_hh.shape[1], -1)
    b = {"sum": b_ih + b_hh, "ih": b_ih, "hh": b_hh}[bias]
    return kernel, recurrent, b


def _tk(label: str, hint: str, **switches) -> Mistake:
    return Mistake(label, hint, lambda *args: _to_keras_variant(*args, **switches))


_BIAS = ("An LSTM only ever adds b_ih + b_hh, so Keras keeps a single bias: bias = b_ih + b_hh (the sum, not "
         "either one alone).")
_ORDER = ("Keras stacks the LSTM gates in the same order as PyTorch (i, f, c, o with c = PyTorch's g), so no "
          "block moves: only the matrices are transposed. (Swapping the first two blocks is the GRU's rule.)")
TO_KERAS: tuple[Mistake, ...] = (
    _tk("the Keras bias is b_ih alone: b_hh is missing", _BIAS, bias="ih"),
    _tk("the Keras bias is b_hh alone: b_ih is missing", _BIAS, bias="hh"),
    _tk("the weights were reshaped instead of transposed",
        "reshape/view keep the order of the elements in memory and only relabel the axes: use w_ih.T (Keras's "
        "kernel is (H_in, 4H), the transpose of w_ih).", transpose="reshape"),
    _tk("the input and forget gate blocks were swapped", _ORDER, order="figo"),
    _tk("the gate blocks were reordered to i, f, o, g", _ORDER, order="ifog"),
)


def _keras_oracle(args: dict[str, Tensor]) -> list[Tensor]:
    """Load the weights into a real Keras LSTM with course_lib.convert and read its variables back."""
    keras = _keras()
    w_ih = args["w_ih"]
    layer = keras.layers.LSTM(w_ih.shape[0] // 4)
    convert.reference_to_keras(LayerWeights(*(t.float() for t in args.values())), layer)
    return [torch.as_tensor(np.array(keras.ops.convert_to_numpy(v), copy=True)).double()
            for v in (layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias)]


def build_to_keras(name: str = "torch_to_keras_weights", seed: int = 0, input_size: int = 3,
                   hidden: int = 5) -> tuple[Exercise, list[Case]]:
    """The weight-moving exercise (the student's function called ``name``) and its two random layers."""
    positive_int("input_size", input_size)
    positive_int("hidden", hidden)
    rand = Randn(seed)
    cases = []
    for H_in, H in ((input_size, hidden), (1, hidden)):
        args = {"w_ih": rand(4 * H, H_in, scale=0.5), "w_hh": rand(4 * H, H, scale=0.5),
                "b_ih": rand(4 * H, scale=0.5), "b_hh": rand(4 * H, scale=0.5)}
        cols = ("gate column", 4 * H)
        leaves = [Leaf("kernel", (("input", H_in), cols)), Leaf("recurrent_kernel", (("hidden", H), cols)),
                  Leaf("bias", (cols,))]
        case = Case(args, leaves, [], f"input={H_in}, hidden={H}, seed={seed}")
        case.expected = _keras_oracle(case.args)
        cases.append(case)

    def unpack(result: Any, case: Case) -> list[Any]:
        if isinstance(result, list) and len(result) == 3:
            result = tuple(result)                  # keras's get_weights() style is fine too
        return list(unpack_nested(result, ("kernel", "recurrent_kernel", "bias"), name).values())

    ex = Exercise(name, ("w_ih", "w_hh", "b_ih", "b_hh"), unpack, TO_KERAS,
                  lambda case, got, mism: "Keras's kernel is w_ih.T (H_in, 4H), recurrent_kernel is w_hh.T (H, 4H) "
                                          "and bias is b_ih + b_hh (4H,).",
                  oracle_name="a Keras LSTM loaded with course_lib.convert",
                  passed=f"a Keras LSTM with these weights matches on {len(cases)} random layers "
                         f"(input={input_size} and 1, hidden={hidden})")
    return ex, cases


#: The exercises of this module, for the catalogue tests (see :mod:`._engine`). ``check_training`` trains
#: and scores against a baseline: it has no catalogue of mistakes.
EXERCISES: dict[str, Builder] = {"forecast": build_forecaster, "torch_to_keras_weights": build_to_keras}


@student_facing
def check_torch_to_keras_weights(fn: Any, *, seed: int = 0, input_size: int = 3, hidden: int = 5) -> None:
    """Grade ``fn(w_ih, w_hh, b_ih, b_hh) -> (kernel, recurrent_kernel, bias)``, one LSTM layer into Keras.

    Prints one line on success; raises :class:`CheckFailed` with what to fix otherwise.
    """
    grade(fn, *build_to_keras(_name(fn, "torch_to_keras_weights"), seed, input_size, hidden))


# ----------------------------------------------------------------------------- training to a target

def forecast_data(seed: int = 0, n_steps: int = 1000, window: int = 24) -> tuple[Tensor, ...]:
    """``(x_train, y_train, x_val, y_val)``: windows of the seasonal series (no drift), split 80/20 in time."""
    series = data.seasonal_series(n_steps, trend=0.0, seed=seed)
    train_part, val_part = data.train_test_split_series(series, 0.8)
    return (*data.windows(train_part, window), *data.windows(val_part, window))


PERIOD = 24   # the seasonal series' daily rhythm, in steps (course_lib.data.seasonal_series)


def forecast_baselines(seed: int = 0) -> dict[str, float]:
    """Validation MSE of the two lookups any forecaster must beat, on the windows of :func:`forecast_data`.

    ``"last value"``: the next value is the window's last one, ``x[:, -1]``. ``"seasonal naive"``: the next
    value is the one a period (24 steps) before it, ``x[:, -24]``, the value the window starts with.
    """
    _, _, x_val, y_val = forecast_data(seed)
    y = y_val.double()
    return {"last value": float(((x_val[:, -1].double() - y) ** 2).mean()),
            "seasonal naive": float(((x_val[:, -PERIOD].double() - y) ** 2).mean())}


_WEIGHT_NAMES = ("w_ih", "w_hh", "b_ih", "b_hh", "w_out", "b_out")


def _trained_weights(result: Any, name: str) -> tuple[Tensor, ...]:
    """The six tensors a training function returned, checked for structure, shapes and dtype."""
    got = unpack_nested(result, _WEIGHT_NAMES, name)
    for k, v in got.items():
        if not hasattr(v, "shape"):
            fail(f"{name}: {k} came back as a {type(v).__name__}, not a tensor; return plain tensors, for example "
                 f"p.detach().clone() for each parameter p of the trained model.")
    w_hh = got["w_hh"]
    H = int(w_hh.shape[1]) if getattr(w_hh, "ndim", 0) == 2 else 0
    if H < 1:
        fail(f"{name}: w_hh should be the LSTM's (4H, H) recurrent weights, got shape "
             f"{tuple(getattr(w_hh, 'shape', ()))}; return (lstm.weight_ih_l0, lstm.weight_hh_l0, "
             f"lstm.bias_ih_l0, lstm.bias_hh_l0, head.weight, head.bias).")
    shapes = {"w_ih": (("gate row", 4 * H), ("input", 1)), "w_hh": (("gate row", 4 * H), ("hidden", H)),
              "b_ih": (("gate row", 4 * H),), "b_hh": (("gate row", 4 * H),),
              "w_out": (("output", 1), ("hidden", H)), "b_out": (("output", 1),)}
    # A model's own nn.Parameter objects are fine here (torch's class, not one of the student's): detach them.
    plain = {k: v.detach() if type(v) is torch.nn.Parameter else v for k, v in got.items()}
    return tuple(as_clean_tensor(plain[k], Leaf(k, shapes[k]), name) for k in _WEIGHT_NAMES)


@student_facing
def check_training(fn: Any, *, seed: int = 0, target_mse: float | None = None) -> None:
    """Grade ``fn(x_train, y_train) -> (w_ih, w_hh, b_ih, b_hh, w_out, b_out)``: train a fresh forecaster.

    The data are the windows of :func:`forecast_data` (``seed`` draws the series' noise). The forecaster
    holding the returned weights (run by the reference) must reach a validation mean squared error below
    ``target_mse``, by default the seasonal-naive baseline of :func:`forecast_baselines` (a model that
    does worse than looking up the value a period back has learnt nothing worth having). Raises
    :class:`CheckFailed` with what to fix otherwise.
    """
    name = _name(fn, "train")
    check_callable(fn, name, ("x_train", "y_train"))
    x_train, y_train, x_val, y_val = forecast_data(seed)
    base = forecast_baselines(seed)
    naive, seasonal = base["last value"], base["seasonal naive"]
    target = seasonal if target_mse is None else target_mse
    what = f"the seasonal-naive baseline {seasonal:.4g}" if target_mse is None else f"the target {target_mse:g}"
    with torch.enable_grad():
        result = call_student(fn, name, {"x_train": x_train, "y_train": y_train})
    weights = _trained_weights(result, name)
    with torch.no_grad():
        pred = forecaster_variant(tuple(w.double() for w in weights), x_val.double())   # (n_val, 1)
    mse = float(((pred - y_val.double()) ** 2).mean())
    if not math.isfinite(mse):
        fail(f"{name}: the trained weights give NaN or inf forecasts: training diverged. Lower the learning rate "
             f"or clip the gradients.")
    H = weights[1].shape[1]
    if mse >= target and all(float(w.abs().max()) <= 1 / H ** 0.5 for w in weights):
        fail(f"{name}: with the weights you return, the validation MSE is {mse:.4g}, above {what}, and every "
             f"weight still lies within ±1/sqrt(H) = ±{1 / H ** 0.5:.3g}, the range PyTorch draws initial weights "
             f"from: these look like the weights before training. Return the parameters after the training loop "
             f"(a p.detach().clone() taken before the loop keeps the initial values) and check that the optimizer "
             f"was given model.parameters(); if you do both, training moved the weights very little: train for "
             f"more epochs, or with a larger learning rate.")
    if mse >= target:
        fail(f"{name}: with the weights you return, the validation MSE is {mse:.4g}, above {what} (repeating the "
             f"last value of each window scores {naive:.4g}, the value one period back {seasonal:.4g}). Train for "
             f"more epochs, or with a larger learning rate, and check that the loss goes down.")
    print(f"{name}: validation MSE {mse:.4g} < {what} (repeating the last value scores {naive:.4g}, the value "
          f"one period back {seasonal:.4g}).")
