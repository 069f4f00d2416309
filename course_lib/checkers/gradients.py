"""Checker for measuring how gradients fade through time: ``check_state_gradient_norms``.

The student's function ``state_gradient_norms(xs, h0, w_ih, w_hh, b_ih, b_hh) -> norms`` runs a
one-layer tanh RNN over the time-major ``xs`` (L, N, H_in) from ``h0`` (N, H) and returns, for every
step t = 0 ... L-1, the norm of the gradient of the last hidden state (summed over the batch and the
units, ``s = h_{L-1}.sum()``) with respect to the hidden state ``h_t`` after step t:

    norms[t] = ‖∂s/∂h_t‖₂,    so norms[L-1] = sqrt(N·H) and earlier entries show the decay.

``norms`` is a float32 tensor of shape (L,). The oracle is autograd through
:func:`course_lib.reference.rnn_cell` in float64.
"""
from __future__ import annotations

from typing import Any

import torch

from .. import reference
from ._core import Leaf, Randn, positive_int, student_facing
from ._engine import Builder, Case, Exercise, Mistake, grade

__all__ = ["check_state_gradient_norms"]

NAME = "state_gradient_norms"
PARAMS = ("xs", "h0", "w_ih", "w_hh", "b_ih", "b_hh")


def norms_variant(xs, h0, w_ih, w_hh, b_ih, b_hh, *, wrt: str = "h", reduce: str = "sum",
                  order: str = "time", power: int = 1, shift: bool = False) -> torch.Tensor:
    """``‖∂s/∂h_t‖`` for every step by autograd, with switches for the mistakes.

    ``wrt`` "h" (states) or "x" (inputs); ``reduce`` how h_{L-1} becomes a scalar ("sum" or "mean");
    ``order`` "time" or "reversed"; ``power`` 1 (norm) or 2 (squared norm); ``shift`` measures
    h_{t-1} instead of h_t (h0 first, the last state left out).
    """
    with torch.enable_grad():
        xs = xs.detach().clone().requires_grad_(wrt == "x")
        h = h0.detach().clone().requires_grad_()
        states = [h]
        for x_t in xs.unbind(0):
            h = reference.rnn_cell(x_t, h, w_ih, w_hh, b_ih, b_hh)       # (N, H)
            states.append(h)
        s = states[-1].sum() if reduce == "sum" else states[-1].mean()
        if wrt == "x":
            (g,) = torch.autograd.grad(s, xs)
            grads = list(g.unbind(0))
        else:
            targets = states[:-1] if shift else states[1:]
            grads = torch.autograd.grad(s, targets)
    norms = torch.stack([g.norm() ** power for g in grads])                # (L,)
    return norms.flip(0) if order == "reversed" else norms


def _m(label: str, hint: str, **switches) -> Mistake:
    return Mistake(label, hint, lambda *args: norms_variant(*args, **switches))


_ORDER = "norms[t] belongs to h_t, the state after step t: norms[0] is the earliest step and norms[-1] the last."
MISTAKES: tuple[Mistake, ...] = (
    _m("the norms are in reverse order", _ORDER, order="reversed"),
    _m("the norms are shifted by one step: norms[0] is measured at h0", _ORDER + " h0 is not part of norms.",
       shift=True),
    _m("these are the gradients with respect to the inputs x_t, not the hidden states h_t",
       "Differentiate with respect to each hidden state h_t you computed (keep them in a list), not the inputs.",
       wrt="x"),
    _m("the last state h_{L-1} is averaged (mean) instead of summed",
       "The scalar is s = h_{L-1}.sum(), over the batch and the units (h_{L-1} is the state after the last step).",
       reduce="mean"),
    _m("these are squared norms", "Return the Euclidean norm ‖∂s/∂h_t‖ (g.norm()), not its square.", power=2),
)


def _diagnose(case: Case, got, mism) -> str:
    N, H = case.args["h0"].shape
    return (f"norms[-1] should be sqrt(N·H) = {float(N * H) ** 0.5:.4g}, the norm of ∂s/∂h_{{L-1}} (all ones); "
            f"each earlier norm comes from the chain rule through the steps in between. Measure with autograd: "
            f"make h0 a leaf that requires grad, keep every h_t, then torch.autograd.grad(h_t_list[-1].sum(), "
            f"h_t_list).")


def build(seed: int = 0, batch: int = 2, input_size: int = 3, hidden: int = 4,
          length: int = 6) -> tuple[Exercise, list[Case]]:
    """The exercise and its two random RNNs (one that shrinks the gradient, one that amplifies it)."""
    for k, v in (("batch", batch), ("input_size", input_size), ("hidden", hidden), ("length", length)):
        positive_int(k, v)
    rand = Randn(seed)
    cases = []
    for scale in (0.5, 1.5):        # recurrent weights that shrink and that amplify the gradient
        args = {"xs": rand(length, batch, input_size), "h0": torch.tanh(rand(batch, hidden)),
                "w_ih": rand(hidden, input_size, scale=0.5), "w_hh": rand(hidden, hidden, scale=scale / hidden ** 0.5),
                "b_ih": rand(hidden, scale=0.5), "b_hh": rand(hidden, scale=0.5)}
        case = Case(args, [Leaf("norms", (("time", length),))], [],
                    f"length={length}, batch={batch}, input={input_size}, hidden={hidden}, "
                    f"w_hh scale={scale}, seed={seed}")
        case.expected = [norms_variant(*case.args64().values()).double()]
        cases.append(case)
    ex = Exercise(NAME, PARAMS, lambda result, case: [result], MISTAKES, _diagnose,
                  oracle_name="autograd through the reference cell",
                  passed=f"matches autograd on {len(cases)} random RNNs (length={length}, batch={batch}, "
                         f"input={input_size}, hidden={hidden}; recurrent weights that shrink and that amplify)")
    return ex, cases


#: The exercises of this module, for the catalogue tests (see :mod:`._engine`).
EXERCISES: dict[str, Builder] = {NAME: build}


@student_facing
def check_state_gradient_norms(fn: Any, *, seed: int = 0, batch: int = 2, input_size: int = 3, hidden: int = 4,
                               length: int = 6) -> None:
    """Grade ``fn(xs, h0, w_ih, w_hh, b_ih, b_hh) -> norms (L,)``, ``norms[t] = ‖∂(h_{L-1}.sum())/∂h_t‖``.

    Prints one line on success; raises :class:`CheckFailed` with what to fix otherwise.
    """
    grade(fn, *build(seed, batch, input_size, hidden, length))
