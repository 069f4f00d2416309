"""Checker for gradient clipping by global norm: ``check_clip_grad_norm``.

The student's function is ``clip_grad_norm(grads, max_norm) -> list[Tensor]``: new tensors scaled
by ``min(1, max_norm / (total_norm + 1e-6))`` with ``total_norm = sqrt(Σ_k ‖g_k‖²)``. It may also
return ``(list, total_norm)``, in which case the norm is checked too. The caller's tensors (and
list) must be left as they were. The oracle is ``torch.nn.utils.clip_grad_norm_`` applied to clones.

Four cases: a global norm well above ``max_norm``; one below it (nothing may change); one where a
single tensor dominates (so clipping each tensor on its own gives a different answer); and all-zero
gradients (norm 0, where dividing by the bare norm fails and ``clip_grad_norm_`` returns zeros).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from . import mistakes
from ._core import Leaf, Randn, seq_items, fail, student_facing, unpack_nested
from ._engine import Builder, Case, Exercise, correct_on, grade

__all__ = ["check_clip_grad_norm"]

NAME = "clip_grad_norm"
SHAPES = ((4, 3), (5,), (2, 3, 2))
_AXES = ("i", "j", "k")


def _oracle(grads: list[torch.Tensor], max_norm: float) -> tuple[list[torch.Tensor], float]:
    params = []
    for g in grads:
        p = torch.nn.Parameter(torch.zeros_like(g, dtype=torch.float64))
        p.grad = g.detach().double().clone()
        params.append(p)
    total = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    return [p.grad.detach().clone() for p in params], total


def _split(result: Any) -> tuple[Any, Any]:
    """``(list, norm)`` or just the list; the norm is None when it was not returned."""
    if isinstance(result, (tuple, list)):
        items = seq_items(result)
        if len(items) == 2 and isinstance(items[0], (tuple, list)):
            return items[0], items[1]
    return result, None


def _unpack(result: Any, case: Case) -> list[Any]:
    grads, _ = _split(result)
    n = len(case.leaves)
    if isinstance(grads, (tuple, list)) and len(seq_items(grads)) != n:
        fail(f"{NAME}: your {NAME} returned {len(seq_items(grads))} tensors for {n} gradients; return one clipped "
             f"tensor per gradient, in the same order.")
    structure = tuple(leaf.what for leaf in case.leaves)
    return list(unpack_nested(grads, structure, NAME).values())


def _as_float(value: Any) -> float | None:
    """A returned norm as a float, from an exact float/int, a one-element tensor or array, or a NumPy scalar."""
    if type(value) in (float, int):
        return float(value)
    if type(value) in (np.float32, np.float64):
        return float(value)
    if type(value) is np.ndarray and value.size == 1 and value.dtype.kind == "f":
        return float(np.array(value, copy=True).reshape(-1)[0])
    if type(value) is torch.Tensor and value.numel() == 1 and value.dtype.is_floating_point:
        return float(torch.empty((), dtype=torch.float64).copy_(value.detach().reshape(())))
    return None


def _check_norm(result: Any, case: Case) -> None:
    _, norm = _split(result)
    if norm is None:
        return
    got = _as_float(norm)
    if got is None:
        fail(f"{NAME}: the total norm your {NAME} returned is a {type(norm).__name__}; return a float "
             f"(or a one-element tensor).")
    expected = case.extra["norm"]
    if not (math.isfinite(got) and abs(got - expected) <= 1e-5 + 1e-4 * abs(expected)):
        fail(f"{NAME}: the total norm you returned is {got:.6g}; expected {expected:.6g}, the norm of all gradients "
             f"together before clipping, sqrt(Σ_k ‖g_k‖²) (case: {case.label}).")


_ZERO = ("Every gradient is zero here, so the global norm is 0 (it happens: a parameter the loss does not reach): "
         "clip_grad_norm_ returns zeros, and so must yours; divide by norm + 1e-6 as in the formula, never by the "
         "bare norm.")


def build(seed: int = 0) -> tuple[Exercise, list[Case]]:
    """The clipping exercise and its three random cases, with torch's answers already computed."""
    rand = Randn(seed)
    cases = []
    for kind, scales in (("above", (1.0, 1.0, 1.0)), ("below", (1.0, 1.0, 1.0)), ("one large", (3.0, 0.2, 0.2)),
                         ("zero", (0.0, 0.0, 0.0))):
        grads = [rand(*shape, scale=s) for shape, s in zip(SHAPES, scales)]
        total = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))
        max_norm = {"above": 1.0, "below": round(1.5 * total, 2), "one large": 2.0, "zero": 1.0}[kind]
        leaves = [Leaf(f"clipped grads[{i}]", tuple(zip(_AXES, shape))) for i, shape in enumerate(SHAPES)]
        case = Case({"grads": grads, "max_norm": max_norm}, leaves, [],
                    f"{len(grads)} tensors of shapes {', '.join(map(str, SHAPES))}, global norm {total:.3g}"
                    f"{' (every gradient is zero)' if kind == 'zero' else ''}, max_norm={max_norm:g}, seed={seed}",
                    note=_ZERO if kind == "zero" else "")
        case.expected, case.extra["norm"] = _oracle(grads, max_norm)
        cases.append(case)
    ex = Exercise(NAME, ("grads", "max_norm"), _unpack, mistakes.CLIP,
                  lambda case, got, mism: ("Scale every tensor by the same factor min(1, max_norm / total_norm), "
                                           "total_norm = sqrt(Σ_k ‖g_k‖²)."),
                  oracle_name="torch.nn.utils.clip_grad_norm_", after=_check_norm,
                  finite_hint=lambda case: case.note,
                  passed=correct_on(len(cases), f"{len(SHAPES)} gradient tensors; global norm above and below "
                                                f"max_norm, and 0"))
    return ex, cases


#: The exercises of this module, for the catalogue tests (see :mod:`._engine`).
EXERCISES: dict[str, Builder] = {NAME: build}


@student_facing
def check_clip_grad_norm(fn: Any, *, seed: int = 0) -> None:
    """Grade ``fn(grads, max_norm) -> list`` (or ``(list, total_norm)``), clipping by global norm.

    Prints one line on success; raises :class:`CheckFailed` with what to fix otherwise.
    """
    grade(fn, *build(seed))
