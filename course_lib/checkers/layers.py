"""Checkers for a whole sequence: ``check_rnn_layer``, ``check_lstm_layer``, ``check_gru_layer``.

The student's layer is single-layer and time-major:

- ``rnn_layer(xs, h0, w_ih, w_hh, b_ih, b_hh) -> (output, h_n)``, the same for ``gru_layer``;
- ``lstm_layer(xs, hx, w_ih, w_hh, b_ih, b_hh) -> (output, (h_n, c_n))`` with ``hx = (h0, c0)``;

``xs`` is (L, N, H_in), ``output`` (L, N, H) stacks h_t of every step, ``h_n``/``c_n`` are (N, H).
An initial state of ``None`` means zeros; one of the three cases passes ``None``.
The oracle is :func:`course_lib.reference.rnn` (``lstm``, ``gru``), which agrees with ``torch.nn``.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import torch

from .. import reference
from ..reference import LayerWeights
from . import mistakes
from ._core import Leaf, Mismatch, Randn, compare, positive_int, student_facing, unpack_nested
from ._engine import Builder, Case, Exercise, correct_on, grade
from .cells import MATMUL_HINT, draw_state, draw_weights, sizes, sizes_detail

__all__ = ["check_rnn_layer", "check_lstm_layer", "check_gru_layer"]


def _oracle(kind: str, args: dict) -> list[torch.Tensor]:
    xs, hx, *w = args.values()
    layer = {"rnn": reference.rnn, "lstm": reference.lstm, "gru": reference.gru}[kind]
    if hx is not None:
        hx = tuple(s.unsqueeze(0) for s in hx) if kind == "lstm" else hx.unsqueeze(0)   # (1, N, H)
    with torch.no_grad():
        output, last = layer(xs, hx, [LayerWeights(*w)])
    states = last if kind == "lstm" else (last,)
    return [output.double()] + [s[0].double() for s in states]


_CELLS = {"rnn": reference.rnn_cell, "lstm": reference.lstm_cell, "gru": reference.gru_cell}


def _state_before(kind: str, args: dict, t: int):
    """The correct state entering step ``t`` (h, or (h, c) for the LSTM), in float64."""
    xs, hx, *w = args.values()
    N, H = xs.shape[1], w[1].shape[1]
    zeros = xs.new_zeros(N, H)
    state = ((zeros, zeros) if kind == "lstm" else zeros) if hx is None else hx
    with torch.no_grad():
        for x_t in xs[:t].unbind(0):
            state = _CELLS[kind](x_t, state, *w)
    return state


def _what_step_reads(kind: str, case: Case, got_t: torch.Tensor, t: int) -> str:
    """Run the correct cell on the inputs a loop might feed it at step ``t``, and say which one the student's
    output[t] is: another input step, or (at t = 0) zeros in place of the given initial state."""
    args = case.args64()
    xs, hx, *w = args.values()
    state = _state_before(kind, args, t)
    zeros = torch.zeros_like(state[0] if kind == "lstm" else state)

    def h_of(x_t, s):
        with torch.no_grad():
            out = _CELLS[kind](x_t, s, *w)
        return out[0] if kind == "lstm" else out

    def same(h) -> bool:
        return compare(got_t, h, 1e-5, 1e-4) is None
    for t2 in range(xs.shape[0]):
        if t2 != t and same(h_of(xs[t2], state)):
            return (f"Your cell looks right: output[{t}] is exactly what the correct cell gives for the input "
                    f"xs[{t2}], so at step {t} the loop feeds the cell the wrong time step; step t must read xs[t].")
    if t == 0 and hx is not None:
        starts = [("zeros in place of the given initial state", (zeros, zeros) if kind == "lstm" else zeros)]
        if kind == "lstm":
            starts += [("h = 0 in place of the given h0", (zeros, state[1])),
                       ("c = 0 in place of the given c0", (state[0], zeros))]
        for what, s in starts:
            if same(h_of(xs[0], s)):
                return (f"Your cell looks right: output[0] is what the correct cell gives from {what}, so the loop "
                        f"ignores the initial state it is given; use zeros only when it is None.")
    return ""


def _diagnose(kind: str) -> Callable[[Case, list, list[Mismatch | None]], str]:
    def diagnose(case: Case, got, mism) -> str:
        if mism[0] is not None:
            out, exp = got[0], case.expected[0]
            if all(m is None for m in mism[1:]):
                finals = "h_n and c_n are" if kind == "lstm" else "h_n is"
                return (f"Since {finals} right, your cell and the way the state is carried are right: look at how "
                        f"output is assembled. output[t] must be h_t, the state after step t, with the steps "
                        f"stacked along a new first axis (torch.stack(hs), time first, then batch, then hidden).")
            bad_steps = [t for t in range(out.shape[0]) if compare(out[t], exp[t], 1e-5, 1e-4) is not None]
            t0 = bad_steps[0]
            reads = _what_step_reads(kind, case, out[t0], t0)
            if reads:
                return reads
            if t0 > 0:
                return (f"output is right up to step {t0 - 1} and wrong from step {t0} on: the first step is "
                        f"right, so look at how the state is passed from one step to the next.")
            return (f"output is wrong already at step 0 and is not what the correct cell gives for any input step "
                    f"or from zeros, so the computation of one step is off: run check_{kind}_cell on your cell "
                    f"first (if it passes, check what your loop passes to the cell at step 0: xs[0] and the "
                    f"initial state).")
        if case.leaves[1].what == "h_n" and mism[1] is not None:
            return "output is right, so h_n should simply be the last step's hidden state, output[-1]."
        return "output and h_n are right, so c_n should be the cell state after the last step."
    return diagnose


def build(kind: str, seed: int = 0, batch: int = 3, input_size: int = 4, hidden: int = 5,
          length: int = 4) -> tuple[Exercise, list[Case]]:
    """The exercise ``{kind}_layer`` and its random cases, with the expected results already computed."""
    for k, v in (("batch", batch), ("input_size", input_size), ("hidden", hidden), ("length", length)):
        positive_int(k, v)
    name = f"{kind}_layer"
    state_name = "hx" if kind == "lstm" else "h0"
    structure = ("output", ("h_n", "c_n")) if kind == "lstm" else ("output", "h_n")
    rand = Randn(seed)
    cases = []
    shapes = [(N, H_in, H, length) for N, H_in, H in sizes(batch, input_size, hidden)]
    shapes += [(1, input_size, hidden, length), (batch, input_size, hidden, 1)]   # batch 1, length 1
    for k, (N, H_in, H, L) in enumerate(shapes):
        state = None if k == 1 else draw_state(rand, kind, N, H)   # the second case starts from None
        args = {"xs": rand(L, N, H_in), state_name: state, **draw_weights(rand, kind, H_in, H)}
        axes = (("batch", N), ("hidden", H))
        leaves = [Leaf("output", (("time", L),) + axes), Leaf("h_n", axes)]
        leaves += [Leaf("c_n", axes)] if kind == "lstm" else []
        note = f"{state_name}=None means the layer starts from zeros." if state is None else ""
        label = f"length={L}, batch={N}, input={H_in}, hidden={H}, {state_name}=" \
                f"{'None' if state is None else 'given'}, seed={seed}"
        case = Case(args, leaves, [], label, note=note)
        case.expected = _oracle(kind, case.args64())
        cases.append(case)
    catalogue = {"rnn": mistakes.RNN_LAYER, "lstm": mistakes.LSTM_LAYER, "gru": mistakes.GRU_LAYER}[kind]
    ex = Exercise(name, ("xs", state_name, "w_ih", "w_hh", "b_ih", "b_hh"),
                  lambda result, case: list(unpack_nested(result, structure, name).values()),
                  catalogue, _diagnose(kind), error_hint=MATMUL_HINT,
                  passed=correct_on(len(cases), sizes_detail(batch, input_size, hidden, f"length={length}, ")
                                    + f"; {state_name} given and None; and batch=1, length=1"))
    return ex, cases


#: The exercises of this module, for the catalogue tests (see :mod:`._engine`).
EXERCISES: dict[str, Builder] = {f"{kind}_layer": functools.partial(build, kind) for kind in ("rnn", "lstm", "gru")}


def _check_layer(kind: str, fn: Any, seed: int, batch: int, input_size: int, hidden: int, length: int) -> None:
    grade(fn, *build(kind, seed, batch, input_size, hidden, length))


@student_facing
def check_rnn_layer(fn: Any, *, seed: int = 0, batch: int = 3, input_size: int = 4, hidden: int = 5,
                    length: int = 4) -> None:
    """Grade ``fn(xs, h0, w_ih, w_hh, b_ih, b_hh) -> (output, h_n)``, a tanh RNN over a time-major sequence."""
    _check_layer("rnn", fn, seed, batch, input_size, hidden, length)


@student_facing
def check_lstm_layer(fn: Any, *, seed: int = 0, batch: int = 3, input_size: int = 4, hidden: int = 5,
                     length: int = 4) -> None:
    """Grade ``fn(xs, hx, w_ih, w_hh, b_ih, b_hh) -> (output, (h_n, c_n))``, an LSTM over a time-major sequence."""
    _check_layer("lstm", fn, seed, batch, input_size, hidden, length)


@student_facing
def check_gru_layer(fn: Any, *, seed: int = 0, batch: int = 3, input_size: int = 4, hidden: int = 5,
                    length: int = 4) -> None:
    """Grade ``fn(xs, h0, w_ih, w_hh, b_ih, b_hh) -> (output, h_n)``, a GRU over a time-major sequence."""
    _check_layer("gru", fn, seed, batch, input_size, hidden, length)
