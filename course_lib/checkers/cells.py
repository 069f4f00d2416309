"""Checkers for one time step: ``check_rnn_cell``, ``check_lstm_cell``, ``check_gru_cell``.

The student's cell has the reference's signature, ``fn(input, hx, w_ih, w_hh, b_ih, b_hh)``,
with PyTorch's stacked-gate layout (see :mod:`course_lib.reference.cells`). It is run on three
seeded random cases: first one with ``input_size == hidden``, where a transposed or swapped weight
matrix still has the right shape and can be recognised, then two with the requested sizes.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import torch

from .. import reference
from . import mistakes
from ._core import Leaf, Mismatch, Randn, positive_int, student_facing, unpack_nested
from ._engine import Builder, Case, Exercise, correct_on, grade

__all__ = ["check_rnn_cell", "check_lstm_cell", "check_gru_cell"]

PARAMS = ("input", "hx", "w_ih", "w_hh", "b_ih", "b_hh")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}

MATMUL_HINT = ("Check each matmul: with one sample per row, x_t @ W.T maps (N, H_in) to (N, G·H) when W has "
               "shape (G·H, H_in), and h_{t-1} @ W.T does the same for the (G·H, H) recurrent weights.")


def draw_weights(rand: Randn, kind: str, input_size: int, hidden: int) -> dict[str, torch.Tensor]:
    """Random weights in PyTorch's layout, scaled by 1/sqrt(fan-in) so that pre-activations stay of order 1
    (gates neither saturated nor linear) at any size, and non-zero biases."""
    G = GATES[kind]
    return {"w_ih": rand(G * hidden, input_size, scale=1.1 / input_size ** 0.5),
            "w_hh": rand(G * hidden, hidden, scale=1.1 / hidden ** 0.5),
            "b_ih": rand(G * hidden, scale=0.5), "b_hh": rand(G * hidden, scale=0.5)}


def draw_state(rand: Randn, kind: str, batch: int, hidden: int):
    """A non-zero previous state: h in (-1, 1), and for the LSTM a cell state of unit scale."""
    h = torch.tanh(rand(batch, hidden))
    return (h, rand(batch, hidden)) if kind == "lstm" else h


def sizes(batch: int, input_size: int, hidden: int) -> list[tuple[int, int, int]]:
    """A square case (input == hidden) first, where a transposed or swapped w_ih still multiplies and
    can be named instead of raising a shape error, then two cases with the requested sizes."""
    return [(batch, hidden, hidden), (batch, input_size, hidden), (batch, input_size, hidden)]


def sizes_detail(batch: int, input_size: int, hidden: int, prefix: str = "") -> str:
    extra = "" if input_size == hidden else f", and one with input=hidden={hidden}"
    return f"{prefix}batch={batch}, input={input_size}, hidden={hidden}{extra}"


def _oracle(kind: str) -> Callable:
    return {"rnn": reference.rnn_cell, "lstm": reference.lstm_cell, "gru": reference.gru_cell}[kind]


def _diagnose(kind: str) -> Callable[[Case, list, list[Mismatch | None]], str]:
    def diagnose(case: Case, got, mism) -> str:
        if kind == "lstm":
            if mism[1] is None:
                return ("c_t is right, so look at how h_t is made from it: h_t = o_t ⊙ tanh(c_t), "
                        "with the output gate o from the fourth block of the weights.")
            return ("Check the four gates (i, f, o through sigmoid, g through tanh, blocks stacked i | f | g | o) "
                    "and c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t, h_t = o_t ⊙ tanh(c_t).")
        if kind == "gru":
            return ("Check r_t and z_t (sigmoids; blocks stacked r | z | n), n_t = tanh(W_in x_t + b_in + "
                    "r_t ⊙ (W_hn h_{t-1} + b_hn)) and h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}.")
        return "Check h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)."
    return diagnose


def build(kind: str, seed: int = 0, batch: int = 3, input_size: int = 4,
          hidden: int = 5) -> tuple[Exercise, list[Case]]:
    """The exercise ``{kind}_cell`` and its random cases, with the expected results already computed."""
    for k, v in (("batch", batch), ("input_size", input_size), ("hidden", hidden)):
        positive_int(k, v)
    name = f"{kind}_cell"
    structure = ("h", "c") if kind == "lstm" else "h"
    rand = Randn(seed)
    cases = []
    for N, H_in, H in sizes(batch, input_size, hidden):
        args = {"input": rand(N, H_in), "hx": draw_state(rand, kind, N, H), **draw_weights(rand, kind, H_in, H)}
        axes = (("batch", N), ("hidden", H))
        leaves = [Leaf("h", axes)] + ([Leaf("c", axes)] if kind == "lstm" else [])
        case = Case(args, leaves, [], f"batch={N}, input={H_in}, hidden={H}, seed={seed}")
        with torch.no_grad():
            out = _oracle(kind)(*case.args64().values())
        case.expected = [t.double() for t in (out if kind == "lstm" else (out,))]
        cases.append(case)
    catalogue = {"rnn": mistakes.RNN_CELL, "lstm": mistakes.LSTM_CELL, "gru": mistakes.GRU_CELL}[kind]
    ex = Exercise(name, PARAMS, lambda result, case: list(unpack_nested(result, structure, name).values()),
                  catalogue, _diagnose(kind), error_hint=MATMUL_HINT,
                  passed=correct_on(len(cases), sizes_detail(batch, input_size, hidden)))
    return ex, cases


#: The exercises of this module, for the catalogue tests (see :mod:`._engine`).
EXERCISES: dict[str, Builder] = {f"{kind}_cell": functools.partial(build, kind) for kind in GATES}


def _check_cell(kind: str, fn: Any, seed: int, batch: int, input_size: int, hidden: int) -> None:
    grade(fn, *build(kind, seed, batch, input_size, hidden))


@student_facing
def check_rnn_cell(fn: Any, *, seed: int = 0, batch: int = 3, input_size: int = 4, hidden: int = 5) -> None:
    """Grade ``fn(input, hx, w_ih, w_hh, b_ih, b_hh) -> h_t``, one step of a tanh RNN.

    Prints one line on success; raises :class:`CheckFailed` with what to fix otherwise.
    """
    _check_cell("rnn", fn, seed, batch, input_size, hidden)


@student_facing
def check_lstm_cell(fn: Any, *, seed: int = 0, batch: int = 3, input_size: int = 4, hidden: int = 5) -> None:
    """Grade ``fn(input, (h, c), w_ih, w_hh, b_ih, b_hh) -> (h_t, c_t)``, one LSTM step (gates i | f | g | o).

    Prints one line on success; raises :class:`CheckFailed` with what to fix otherwise.
    """
    _check_cell("lstm", fn, seed, batch, input_size, hidden)


@student_facing
def check_gru_cell(fn: Any, *, seed: int = 0, batch: int = 3, input_size: int = 4, hidden: int = 5) -> None:
    """Grade ``fn(input, hx, w_ih, w_hh, b_ih, b_hh) -> h_t``, one GRU step (gates r | z | n, PyTorch's reset).

    Prints one line on success; raises :class:`CheckFailed` with what to fix otherwise.
    """
    _check_cell("gru", fn, seed, batch, input_size, hidden)
