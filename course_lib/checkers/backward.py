"""Checkers for backpropagation through time by hand: ``check_rnn_backward``, ``check_lstm_backward``.

The student's function receives the forward inputs and ``grad_hs`` (L, N, H), the gradient of
the loss with respect to every step's hidden state, i.e. the loss is ``(hs * grad_hs).sum()``:

- ``rnn_backward(xs, h0, w_ih, w_hh, b_ih, b_hh, grad_hs)`` returns the gradients for
  ``(input, h0, w_ih, w_hh, b_ih, b_hh)``;
- ``lstm_backward(xs, h0, c0, w_ih, w_hh, b_ih, b_hh, grad_hs)`` those for
  ``(input, h0, c0, w_ih, w_hh, b_ih, b_hh)``;

as a tuple, list or NamedTuple in that order, or a dict with those keys (``"xs"`` may stand for
``"input"``). The oracle is autograd through :func:`course_lib.reference.rnn` / ``lstm``, an
independent route to the same numbers. When a gradient is wrong, the message says which, which
others are right, and what that pattern points to.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np
import torch

from .. import reference
from ..reference import LayerWeights
from . import mistakes
from ._core import Leaf, Mismatch, Randn, seq_items, compare, fail, positive_int, student_facing
from ._engine import Builder, Case, Exercise, grade
from .cells import MATMUL_HINT, draw_weights

__all__ = ["check_rnn_backward", "check_lstm_backward"]


def _autograd(kind: str, args: dict) -> list[torch.Tensor]:
    """Gradients of ``(hs * grad_hs).sum()`` by autograd through the reference layer (float64)."""
    inputs = {k: v.detach().double().requires_grad_() for k, v in args.items() if k != "grad_hs"}
    with torch.enable_grad():
        if kind == "lstm":
            xs, h0, c0, *w = inputs.values()
            hs, _ = reference.lstm(xs, (h0[None], c0[None]), [LayerWeights(*w)])
        else:
            xs, h0, *w = inputs.values()
            hs, _ = reference.rnn(xs, h0[None], [LayerWeights(*w)])
        loss = (hs * args["grad_hs"].double()).sum()
        grads = torch.autograd.grad(loss, list(inputs.values()))
    return [g.detach() for g in grads]


def _unpack(name: str, keys: tuple[str, ...]) -> Callable[[Any, Case], list[Any]]:
    order = ", ".join(keys)

    def unpack(result: Any, case: Case) -> list[Any]:
        if result is None:
            fail(f"{name}: your {name} returned None — did you forget `return`? Expected the gradients "
                 f"({order}).")
        if isinstance(result, dict):
            got = {("input" if k == "xs" else k): dict.__getitem__(result, k) for k in dict.keys(result)}
            missing = [k for k in keys if k not in got]
            if missing:
                fail(f"{name}: the dict your {name} returned has no key {missing[0]!r}; expected the keys "
                     f"{order} (one gradient each).")
            return [got[k] for k in keys]
        if isinstance(result, (tuple, list)):
            items = seq_items(result)
            if len(items) != len(keys):
                fail(f"{name}: your {name} returned {len(items)} gradients; expected {len(keys)}, in the "
                     f"order ({order}).")
            return items
        what = f"a single tensor of shape {tuple(result.shape)}" if isinstance(result, (torch.Tensor, np.ndarray)) \
            else f"a {type(result).__name__}"
        fail(f"{name}: your {name} returned {what}; expected the {len(keys)} gradients ({order}) as a tuple "
             f"or a dict.")
    return unpack


def _diagnose(kind: str) -> Callable[[Case, list, list[Mismatch | None]], str]:
    def diagnose(case: Case, got, mism) -> str:
        names = [leaf.what[len("dL/d"):] for leaf in case.leaves]
        wrong = {n for n, m in zip(names, mism) if m is not None}
        right = set(names) - wrong
        state = "h_t and c_t" if kind == "lstm" else "h_t"
        if "input" in wrong:
            dx, exp = got[0], case.expected[0]
            L = dx.shape[0]
            ok = [compare(dx[t], exp[t], 1e-4, 1e-3) is None for t in range(L)]
            if ok[-1] and not all(ok):
                return (f"dL/dxs is right at the last step but not at earlier ones, so the gradient carried back "
                        f"from step t+1 into {state} is off: dh_t = grad_hs[t] + (what flows back from step t+1).")
        if wrong == {"w_hh"}:
            return ("Since dL/dw_ih and the biases are right, the error signal da_t is right at every step: look "
                    "at how it is paired with the state, dL/dw_hh = Σ_t da_tᵀ h_{t-1}, with h0 at t=0.")
        if wrong == {"w_ih"}:
            return "So da_t is right: look at dL/dw_ih = Σ_t da_tᵀ x_t."
        if wrong <= {"b_ih", "b_hh"}:
            return "Each bias gradient is Σ_t Σ_n da_t: summed over the time steps and over the batch."
        if wrong == {"h0"}:
            return "So only the last hand-off is off: dL/dh0 is what flows back out of step 0, da_0 @ w_hh."
        if wrong == {"c0"}:
            return "So only the last hand-off is off: dL/dc0 is the cell-state gradient leaving step 0, dL/dc_0 ⊙ f_0."
        if wrong == {"input"}:
            return "So da_t is right: look at dL/dx_t = da_t @ w_ih."
        if not right:
            return ("Every gradient differs, so the error signal da_t (the gradient of the pre-activations) is "
                    "off: check dh_t = grad_hs[t] + the gradient from step t+1, and the derivative of tanh "
                    "(1 - tanh²)" + (" and of the sigmoid gates, s(1 - s)." if kind == "lstm" else "."))
        return ""
    return diagnose


def build(kind: str, seed: int = 0, batch: int = 3, input_size: int = 4, hidden: int = 5,
          length: int = 4) -> tuple[Exercise, list[Case]]:
    """The exercise ``{kind}_backward`` and its random cases, with autograd's gradients already computed."""
    for k, v in (("batch", batch), ("input_size", input_size), ("hidden", hidden), ("length", length)):
        positive_int(k, v)
    name = f"{kind}_backward"
    states = ("h0", "c0") if kind == "lstm" else ("h0",)
    keys = ("input",) + states + ("w_ih", "w_hh", "b_ih", "b_hh")
    G = 4 if kind == "lstm" else 1
    N, H_in, H, L = batch, input_size, hidden, length
    rand = Randn(seed)
    cases = []
    for _ in range(2):
        args = {"xs": rand(L, N, H_in), "h0": torch.tanh(rand(N, H))}
        if kind == "lstm":
            args["c0"] = rand(N, H)
        args.update(draw_weights(rand, kind, H_in, H))
        args["grad_hs"] = rand(L, N, H)
        rows = ("gate row" if G > 1 else "hidden", G * H)
        axes = {"input": (("time", L), ("batch", N), ("input", H_in)), "h0": (("batch", N), ("hidden", H)),
                "c0": (("batch", N), ("hidden", H)), "w_ih": (rows, ("input", H_in)),
                "w_hh": (rows, ("hidden", H)), "b_ih": (rows,), "b_hh": (rows,)}
        leaves = [Leaf(f"dL/d{'xs' if k == 'input' else k}", axes[k]) for k in keys]
        case = Case(args, leaves, [], f"length={L}, batch={N}, input={H_in}, hidden={H}, seed={seed}")
        case.expected = _autograd(kind, case.args)
        cases.append(case)
    ex = Exercise(name, tuple(cases[0].args), _unpack(name, keys),
                  mistakes.LSTM_BACKWARD if kind == "lstm" else mistakes.RNN_BACKWARD,
                  _diagnose(kind), atol=1e-4, rtol=1e-3, error_hint=MATMUL_HINT, per_leaf_mistakes=True,
                  oracle_name="autograd",
                  passed=f"all {len(keys)} gradients match autograd on {len(cases)} random cases "
                         f"(length={length}, batch={batch}, input={input_size}, hidden={hidden})")
    return ex, cases


#: The exercises of this module, for the catalogue tests (see :mod:`._engine`).
EXERCISES: dict[str, Builder] = {f"{kind}_backward": functools.partial(build, kind) for kind in ("rnn", "lstm")}


def _check_backward(kind: str, fn: Any, seed: int, batch: int, input_size: int, hidden: int, length: int) -> None:
    grade(fn, *build(kind, seed, batch, input_size, hidden, length))


@student_facing
def check_rnn_backward(fn: Any, *, seed: int = 0, batch: int = 3, input_size: int = 4, hidden: int = 5,
                       length: int = 4) -> None:
    """Grade ``fn(xs, h0, w_ih, w_hh, b_ih, b_hh, grad_hs)``, BPTT for a one-layer tanh RNN.

    It must return the gradients of ``(hs * grad_hs).sum()`` for (input, h0, w_ih, w_hh, b_ih, b_hh).
    """
    _check_backward("rnn", fn, seed, batch, input_size, hidden, length)


@student_facing
def check_lstm_backward(fn: Any, *, seed: int = 0, batch: int = 3, input_size: int = 4, hidden: int = 5,
                        length: int = 4) -> None:
    """Grade ``fn(xs, h0, c0, w_ih, w_hh, b_ih, b_hh, grad_hs)``, BPTT for a one-layer LSTM.

    It must return the gradients of ``(hs * grad_hs).sum()`` for (input, h0, c0, w_ih, w_hh, b_ih, b_hh).
    """
    _check_backward("lstm", fn, seed, batch, input_size, hidden, length)
