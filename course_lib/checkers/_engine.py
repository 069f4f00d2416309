"""The grading loop shared by the checkers, and how a wrong answer is put into words.

Every checker has the same skeleton. A ``build`` function returns an :class:`Exercise` (how the
student's function is called, how its result is read, the catalogue of known :class:`Mistake` s,
the success line) and its :class:`Case` s (seeded inputs with the oracle's answers); the public
``check_*`` function hands both to :func:`grade`. :func:`run_exercise` runs the checks of
:mod:`._core` in the order a student debugs and, when the values are wrong, asks the exercise's
catalogue whether the answer matches a known mistake before falling back on saying where it
differs and what the pattern of right and wrong outputs points to.

Each checker module lists its builders in ``EXERCISES`` (exercise name -> a function of no
arguments returning ``(Exercise, cases)``), so that the catalogue tests find every exercise and
every catalogue entry without a list of their own (:func:`course_lib.checkers.exercises`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from ._core import (CheckFailed, Leaf, Mismatch, as_clean_tensor, call_student, check_callable, check_finite,
                    compare, fail, matches, mismatch_str, position_str)

__all__ = ["Mistake", "Case", "Exercise", "Builder", "grade", "run_exercise", "explain", "Diagnosis", "correct_on",
           "mistake_leaves", "oracle_leaves"]


@dataclass(frozen=True)
class Mistake:
    """A known wrong way to do the exercise, computed on the checker's inputs to recognise it.

    ``fn`` has the exercise's signature and returns what that mistake returns; ``label`` names
    the mistake in a clause ("the input and forget gates look swapped"); ``hint`` says what to do.
    """

    label: str
    hint: str
    fn: Callable


@dataclass
class Case:
    """One random input to the exercise, the expected result and how to describe it."""

    args: dict[str, Any]          # float32 inputs in call order
    leaves: list[Leaf]            # what the function must return, in ``structure`` order
    expected: list[Tensor]        # float64, computed by the oracle from pristine copies
    label: str                    # "batch=3, input=4, hidden=5, seed=0"
    kwargs: dict = field(default_factory=dict)
    note: str = ""                # added to error messages, e.g. "h0=None means start from zeros"
    extra: dict = field(default_factory=dict)   # anything else a checker needs (e.g. the expected norm)

    def args64(self) -> dict[str, Any]:
        """Fresh float64 copies of the float inputs (integer tensors keep their dtype), for the oracle and the
        mistaken variants."""
        return {k: _to64(v) for k, v in self.args.items()}


def _to64(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.detach().double() if value.is_floating_point() else value.detach().clone()  # ids stay ids
    if isinstance(value, tuple):
        return tuple(_to64(v) for v in value)
    if isinstance(value, list):
        return [_to64(v) for v in value]
    return value


@dataclass
class Exercise:
    """How to grade one exercise: its name, how it is called, how its result is read, and hints."""

    name: str
    params: tuple[str, ...]
    unpack: Callable[[Any, "Case"], list[Any]]       # student result -> raw leaves, in order
    mistakes: Sequence[Mistake] = ()
    diagnose: Callable[["Case", list[Tensor], list[Mismatch | None]], str] | None = None
    atol: float = 1e-5
    rtol: float = 1e-4
    call_kwargs: dict = field(default_factory=dict)  # keywords the exercise passes (for the arity check)
    error_hint: str = ""
    finite_hint: Callable[["Case"], str] | None = None
    per_leaf_mistakes: bool = False                  # also name mistakes leaf by leaf (gradients)
    oracle_name: str = "the reference"
    after: Callable[[Any, "Case"], None] | None = None  # a last check on the raw result (e.g. a norm)
    passed: str = ""                                 # the success line after "name: " (see correct_on)
    dtype: torch.dtype = torch.float32               # what the answer's tensors must be (float64: whole numbers)
    #: The message for a wrong answer when the default wording does not fit the exercise (a count, ids):
    #: ``wording(case, got, mism, named, others)`` with ``named`` the catalogue entry that fits every case, or None.
    wording: Callable[["Case", list[Tensor], list[Mismatch | None], "Mistake | None", Sequence], str] | None = None


#: An exercise's builder as ``EXERCISES`` lists it: no arguments, returns the exercise and its cases.
Builder = Callable[[], "tuple[Exercise, list[Case]]"]


def correct_on(n_cases: int, detail: str) -> str:
    """The usual success line: ``"correct on 3 random cases (batch=3, input=4, hidden=5)"``."""
    return f"correct on {n_cases} random cases ({detail})"


def grade(fn: Any, ex: Exercise, cases: Sequence[Case]) -> None:
    """Grade ``fn`` on every case (:func:`run_exercise`), then print the exercise's one success line."""
    run_exercise(fn, ex, cases)
    print(f"{ex.name}: {ex.passed}.")


def oracle_leaves(ex: Exercise, result: Any, case: Case) -> list[Tensor]:
    """Leaves of a trusted result (the oracle's or a mistake's) as float64 tensors."""
    raw = ex.unpack(result, case)
    return [r.detach().double() if isinstance(r, Tensor) else torch.as_tensor(r, dtype=torch.float64)
            for r in raw]


def run_exercise(fn: Any, ex: Exercise, cases: Sequence[Case]) -> None:
    """Grade ``fn`` on every case; fail with one message at the first problem."""
    check_callable(fn, ex.name, ex.params, ex.call_kwargs)
    for k, case in enumerate(cases):
        result, got = _run_case(fn, ex, case)
        mism = [compare(g, e, ex.atol, ex.rtol) for g, e in zip(got, case.expected)]
        if any(m is not None for m in mism):
            others = [(c, _quiet_leaves(fn, ex, c)) for j, c in enumerate(cases) if j != k]
            fail(explain(ex, case, got, mism, others))
        if ex.after is not None:
            ex.after(result, case)


class Diagnosis(str):
    """A message that also carries the labels of the catalogue mistakes it names (``.mistakes``)."""

    mistakes: tuple[str, ...] = ()


def _naming(message: str, mistakes: Sequence[Mistake]) -> Diagnosis:
    out = Diagnosis(message)
    out.mistakes = tuple(m.label for m in mistakes)
    return out


def _run_case(fn: Any, ex: Exercise, case: Case) -> tuple[Any, list[Tensor]]:
    """Call ``fn`` on one case and read its result as clean, finite tensors (or fail saying why not)."""
    result = call_student(fn, ex.name, case.args, case.kwargs, note=case.note, error_hint=ex.error_hint)
    try:
        raw = ex.unpack(result, case)
        got = [as_clean_tensor(r, leaf, ex.name, ex.dtype) for r, leaf in zip(raw, case.leaves)]
        for t, leaf in zip(got, case.leaves):
            check_finite(t, leaf, ex.name, ex.finite_hint(case) if ex.finite_hint else "")
    except CheckFailed as exc:                  # say which case, so that the student can rerun it
        message = str(exc)
        fail(message if f"case: {case.label}" in message else f"{message} (case: {case.label}.)")
    return result, got


def _quiet_leaves(fn: Any, ex: Exercise, case: Case) -> list[Tensor] | None:
    """The student's answer on another case, for cross-checking a named mistake; None if it is unusable."""
    try:
        return _run_case(fn, ex, case)[1]
    except CheckFailed:
        return None


def explain(ex: Exercise, case: Case, got: list[Tensor], mism: list[Mismatch | None],
            others: Sequence[tuple[Case, list[Tensor] | None]] = ()) -> str:
    """The message for wrong values: a named mistake if one fits, else where and a hint.

    A mistake is named only if it accounts for the student's answer on every case: on the failing
    ``case`` and on each of ``others`` (the other cases with the student's answers there, ``None``
    where the answer could not be read), so a coincidence at one size never names the wrong mistake.

    A named mistake's label is also in the result's ``mistakes`` (a :class:`Diagnosis`). An exercise
    with its own ``wording`` (a count, sampled ids) words the message itself, given the named mistake.
    """
    if ex.wording is not None:
        named = _whole_match(ex, case, got, others)
        return _naming(ex.wording(case, got, mism, named, others), [named] if named else [])
    wrong = [i for i, m in enumerate(mism) if m is not None]
    first = wrong[0]
    leaf, m = case.leaves[first], mism[first]
    evidence = (f"{leaf.what} differs by up to {m.max_err:.3g} at {position_str(leaf.axes, m.index)}; "
                f"case: {case.label}")
    verb = "differs" if len(wrong) == 1 else "differ"
    named = _whole_match(ex, case, got, others)
    if named is not None:
        return _naming(f"{ex.name}: {named.label}. {_names(case, wrong)} {verb} from {ex.oracle_name}"
                       f"{_right_str(case, mism, ', while ')}, exactly as that mistake makes "
                       f"{'it' if len(wrong) == 1 else 'them'}. {named.hint} ({evidence}.)", [named])
    if ex.per_leaf_mistakes:
        per_leaf = _leaf_matches(ex, case, got, wrong, others)
        if per_leaf:
            groups: dict[int, tuple[Mistake, list[int]]] = {}
            for i, mistake in per_leaf:
                groups.setdefault(id(mistake), (mistake, []))[1].append(i)
            parts = " ".join(f"{_names(case, idx)}: {mistake.label}. {mistake.hint}"
                             for mistake, idx in groups.values())
            return _naming(f"{ex.name}: {_names(case, wrong)} {verb} from {ex.oracle_name}"
                           f"{_right_str(case, mism, ', while ')}. {parts} ({evidence}.)",
                           [mistake for mistake, _ in groups.values()])
    status = _right_str(case, mism, " ")
    if status:
        status += "."
    if len(wrong) > 1:
        status = f" {_names(case, wrong[1:])} {'is' if len(wrong) == 2 else 'are'} also wrong." + status
    hint = ex.diagnose(case, got, mism) if ex.diagnose else ""
    return (f"{ex.name}: {case.leaves[first].what} differs from {ex.oracle_name}: "
            f"{mismatch_str(case.leaves[first], mism[first])}.{status}"
            f"{' ' + hint if hint else ''} (case: {case.label}.)")


def _right_str(case: Case, mism: list[Mismatch | None], lead: str) -> str:
    right = [i for i in range(len(mism)) if mism[i] is None]
    if not right:
        return ""
    return f"{lead}{_names(case, right)} {'is' if len(right) == 1 else 'are'} right"


def _names(case: Case, idx: Sequence[int]) -> str:
    names = [case.leaves[i].what for i in idx]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def mistake_leaves(ex: Exercise, m: Mistake, case: Case) -> list[Tensor] | None:
    """What mistake ``m`` returns on ``case``, as float64 leaves; None where it cannot run at these shapes."""
    try:
        with torch.no_grad():
            out = m.fn(*case.args64().values(), **case.kwargs)
        leaves = oracle_leaves(ex, out, case)
    except Exception:  # noqa: BLE001 - a mistake that cannot happen at these shapes is skipped
        return None
    if [tuple(t.shape) for t in leaves] != [leaf.shape for leaf in case.leaves]:
        return None
    return leaves


def _agrees_elsewhere(ex: Exercise, m: Mistake, others, idx: Sequence[int] | None = None) -> bool:
    """Does mistake ``m`` give the student's answer (the leaves ``idx``, all by default) on every other case?"""
    for other, answer in others:
        if answer is None:
            continue
        leaves = mistake_leaves(ex, m, other)
        if leaves is None:
            return False
        pick = range(len(leaves)) if idx is None else idx
        if not all(bool(torch.isfinite(leaves[i]).all()) for i in pick):
            continue            # the mistake predicts no usable answer there (NaN), so that case says nothing
        if not matches([answer[i] for i in pick], [leaves[i] for i in pick], ex.atol, ex.rtol):
            return False
    return True


def _whole_match(ex: Exercise, case: Case, got: list[Tensor], others=()) -> Mistake | None:
    for m in ex.mistakes:
        leaves = mistake_leaves(ex, m, case)
        if leaves is not None and matches(got, leaves, ex.atol, ex.rtol) \
                and not matches(leaves, case.expected, ex.atol, ex.rtol) and _agrees_elsewhere(ex, m, others):
            return m
    return None


def _leaf_matches(ex: Exercise, case: Case, got: list[Tensor], wrong: list[int],
                  others=()) -> list[tuple[int, Mistake]]:
    found: dict[int, Mistake] = {}
    for m in ex.mistakes:
        leaves = mistake_leaves(ex, m, case)
        if leaves is None:
            continue
        for i in wrong:
            if i not in found and compare(got[i], leaves[i], ex.atol, ex.rtol) is None \
                    and _agrees_elsewhere(ex, m, others, [i]):
                found[i] = m
    return sorted(found.items())
