"""Checker for scaled dot-product attention: ``check_attention``.

The student's function is ``attention(q, k, v, causal=False) -> output`` with ``q`` (N, L, d_k),
``k`` (N, S, d_k), ``v`` (N, S, d_v) and output (N, L, d_v). The oracle is
``torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)``. One case is
non-causal with more keys than queries (S != L, so a softmax over the wrong axis still has the right
shape and is recognised), two are causal (S == L), and the last has batch 1 and scores of about 150,
where a softmax computed as exp(s) / Σ exp(s) overflows in float32 (torch's stays finite).
"""
from __future__ import annotations

from typing import Any

import torch.nn.functional as F

from . import mistakes
from ._core import Leaf, Randn, positive_int, student_facing, unpack_nested
from ._engine import Builder, Case, Exercise, correct_on, grade

__all__ = ["check_attention"]

_FINITE_CAUSAL = ("With causal=True, a row of scores that is -inf everywhere turns into NaN after the softmax: "
                  "query t must still see keys 0..t, itself included. Does your mask hide the diagonal, or hide "
                  "the past instead of the future? (Mask with triu(1): True strictly above the diagonal.)")


LARGE = 150.0     # the size of the scores in the last case
_FINITE_LARGE = (f"The scores q kᵀ / sqrt(d_k) in this case are about {LARGE:g}: exp of them overflows to inf in "
                 f"float32 and inf / inf is NaN. Subtract each row's maximum before exp (softmax(s) = softmax(s - max s) "
                 f"changes nothing else), as torch.softmax does.")


def _diagnose(case: Case, got, mism) -> str:
    if case.extra["large"]:
        return ("Only the case with large scores is wrong: compute the softmax so that it stays exact when the scores "
                "are large (subtract each row's maximum, or use torch.softmax).")
    if case.kwargs["causal"]:
        return ("The non-causal case is right, so look at the mask: with causal=True query t may attend to "
                "keys 0..t only, by setting later scores to -inf before the softmax.")
    return "Check output = softmax(q kᵀ / sqrt(d_k), over the keys) v."


def build(seed: int = 0, batch: int = 2, length: int = 5, d_k: int = 8, d_v: int = 6) -> tuple[Exercise, list[Case]]:
    """The attention exercise and its random cases, with the expected outputs already computed."""
    for k, v in (("batch", batch), ("length", length), ("d_k", d_k), ("d_v", d_v)):
        positive_int(k, v)
    rand = Randn(seed)
    cases = []
    for causal, S, N, large in ((False, length + 2, batch, False), (True, length, batch, False),
                                (True, length, batch, False), (False, length + 2, 1, True)):
        L = length
        args = {"q": rand(N, L, d_k), "k": rand(N, S, d_k), "v": rand(N, S, d_v)}
        if large:   # a shared direction u adds about LARGE to every score: exp overflows in float32
            u = rand(d_k)
            u = u / u.norm()
            a = (LARGE * d_k ** 0.5) ** 0.5
            args = {"q": args["q"] + a * u, "k": args["k"] + a * u, "v": 0.1 * args["v"]}
        leaf = Leaf("output", (("batch", N), ("query", L), ("d_v", d_v)))
        case = Case(args, [leaf], [], f"batch={N}, queries={L}, keys={S}, d_k={d_k}, d_v={d_v}, "
                    f"causal={causal}{f', scores about {LARGE:g}' if large else ''}, seed={seed}",
                    kwargs={"causal": causal}, extra={"large": large})
        q, k, v = case.args64().values()
        case.expected = [F.scaled_dot_product_attention(q, k, v, is_causal=causal)]
        cases.append(case)
    ex = Exercise("attention", ("q", "k", "v"), lambda result, case: list(unpack_nested(
        result, "output", "attention").values()), mistakes.ATTENTION, _diagnose,
        call_kwargs={"causal": False}, oracle_name="torch's scaled_dot_product_attention",
        error_hint="Check the shapes: scores = q @ k.transpose(-2, -1) is (N, L, S), and weights @ v is (N, L, d_v).",
        finite_hint=lambda case: _FINITE_LARGE if case.extra["large"] else _FINITE_CAUSAL if case.kwargs["causal"]
        else "",
        passed=correct_on(len(cases), f"batch={batch}, length={length}, d_k={d_k}, d_v={d_v}; causal and not, "
                          f"with {length + 2} keys in the non-causal case; and batch=1 with scores about {LARGE:g}"))
    return ex, cases


#: The exercises of this module, for the catalogue tests (see :mod:`._engine`).
EXERCISES: dict[str, Builder] = {"attention": build}


@student_facing
def check_attention(fn: Any, *, seed: int = 0, batch: int = 2, length: int = 5, d_k: int = 8, d_v: int = 6) -> None:
    """Grade ``fn(q, k, v, causal=False) -> softmax(q kᵀ / sqrt(d_k) + mask) v`` on batched 3-D inputs.

    Prints one line on success; raises :class:`CheckFailed` with what to fix otherwise.
    """
    grade(fn, *build(seed, batch, length, d_k, d_v))
