"""Checkers for counting the parameters of a recurrent layer: ``check_parameter_count`` and
``check_hidden_for_budget``.

The student's function is ``count(input_size, hidden_size, num_layers) -> int``, the number of
parameters of ``nn.RNN``/``nn.GRU``/``nn.LSTM`` (``kind``) with those sizes. The oracle is the
module itself, ``sum(p.numel() for p in module.parameters())``, so the answer is PyTorch's count:
G gate blocks (RNN 1, GRU 3, LSTM 4), each with an input matrix, a recurrent matrix and two biases,
and layers above the first reading the layer below's h_t (input size H there).

``check_hidden_for_budget`` grades ``fn(kind, input_size, budget) -> int``, the largest hidden size H
whose one-layer ``nn.GRU``/``nn.LSTM`` (``kind`` "gru" or "lstm") has at most ``budget`` parameters:
what an experiment that compares the two at an equal budget needs. The oracle counts the modules'
own parameters.
"""
from __future__ import annotations

import functools
import numbers
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

from ._core import Leaf, Mismatch, fail, student_facing
from ._engine import Builder, Case, Exercise, Mistake, grade

__all__ = ["check_parameter_count", "check_hidden_for_budget"]

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
MODULES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
GATE_NAMES = {"rnn": "one block", "gru": "3 gate blocks (r, z, n)", "lstm": "4 gate blocks (i, f, g, o)"}
SIZES = ((3, 5, 1), (10, 20, 2), (7, 4, 3))   # (input_size, hidden_size, num_layers); H < H_in in the last
_COUNT = Leaf("the count", ())


def _count(G: int, H_in: int, H: int, layers: int, *, biases: int = 2, recurrent: str = "H",
           upper_in: str = "H", only_first: bool = False) -> int:
    """Parameters of a G-block recurrent stack, with switches for the mistakes.

    ``recurrent``: the size of each recurrent matrix, "H" (H × H, correct), "none" or "H_in" (H × H_in).
    """
    total = 0
    for k in range(1 if only_first else layers):
        n_in = H_in if k == 0 or upper_in == "H_in" else H
        rec = {"H": H * H, "none": 0, "H_in": H * n_in}[recurrent]
        total += G * (H * n_in + rec + biases * H)
    return total


def _whole_number(name: str, call: Callable[[Case], str]) -> Callable[[Any, Case], list[Tensor]]:
    """Read the student's answer as one whole number (float64, exact), or fail saying it is not an int."""
    def unpack(result: Any, case: Case) -> list[Tensor]:
        if isinstance(result, bool) or not isinstance(result, numbers.Integral):
            fail(f"{name}: {call(case)} returned {result!r} ({type(result).__name__}); expected a whole number, "
                 f"an int.")
        return [torch.tensor(float(int(result)), dtype=torch.float64)]
    return unpack


def _number(t: Tensor) -> int:
    return int(round(float(t)))


def _mistakes(kind: str) -> tuple[Mistake, ...]:
    """The catalogue of ``check_parameter_count`` for ``kind``: each label says what went wrong and what to do."""
    G = GATES[kind]
    out = [
        ("one bias vector per gate block was counted; PyTorch keeps two, b_ih and b_hh (Keras keeps one for the "
         "LSTM and for a GRU with reset_after=False)", lambda i, h, n: _count(G, i, h, n, biases=1)),
        ("the biases were left out; each gate block has two, b_ih and b_hh, of size H",
         lambda i, h, n: _count(G, i, h, n, biases=0)),
        ("the recurrent matrices W_hh (H × H per block) were left out",
         lambda i, h, n: _count(G, i, h, n, recurrent="none")),
        ("each recurrent matrix W_hh was counted as H × H_in; it maps h_{t-1} (H values) to H values, so it is "
         "H × H", lambda i, h, n: _count(G, i, h, n, recurrent="H_in")),
        ("every layer was counted with input_size inputs; the layers above the first read the hidden state of "
         "the layer below, so their input size is hidden_size", lambda i, h, n: _count(G, i, h, n, upper_in="H_in")),
        ("only the first layer was counted; multiply out every one of the num_layers layers",
         lambda i, h, n: _count(G, i, h, n, only_first=True)),
    ]
    for other, G2 in GATES.items():
        if other != kind:
            out.append((f"the count is that of an {other.upper()} ({GATE_NAMES[other]}); "
                        f"an {kind.upper()} has {GATE_NAMES[kind]}", lambda i, h, n, G2=G2: _count(G2, i, h, n)))
    return tuple(Mistake(label, "", fn) for label, fn in out)


def build_parameter_count(kind: str = "gru", name: str = "count") -> tuple[Exercise, list[Case]]:
    """The exercise ``count(input_size, hidden_size, num_layers)`` for ``nn.{kind}`` and its fixed sizes."""
    if kind not in GATES:
        raise ValueError(f"kind must be one of {sorted(GATES)}, got {kind!r}")
    cases = []
    for H_in, H, layers in SIZES:
        case = Case({"input_size": H_in, "hidden_size": H, "num_layers": layers}, [_COUNT], [],
                    f"input_size={H_in}, hidden_size={H}, num_layers={layers}")
        module = MODULES[kind](H_in, H, num_layers=layers)
        case.expected = [torch.tensor(float(sum(p.numel() for p in module.parameters())), dtype=torch.float64)]
        cases.append(case)

    def call(case: Case) -> str:
        return f"{name}({', '.join(str(v) for v in case.args.values())})"

    def wording(case: Case, got: list[Tensor], mism: list[Mismatch | None], named: Mistake | None,
                others: Sequence) -> str:
        H_in, H, layers = case.args.values()
        answer, want = _number(got[0]), _number(case.expected[0])
        right = [f"{name}{tuple(c.args.values())}" for c, a in others
                 if a is not None and _number(a[0]) == _number(c.expected[0])]
        also = f" ({', '.join(right)} {'is' if len(right) == 1 else 'are'} right)" if right else ""
        if named is not None:
            return f"{name}: {call(case)} returned {answer}, nn.{kind.upper()} has {want}{also}: {named.label}."
        return (f"{name}: {call(case)} returned {answer}, but nn.{kind.upper()}({H_in}, {H}, num_layers={layers}) "
                f"has {want} parameters{also}. Per layer: {GATES[kind]} blocks × (H·H_in + H·H + 2H), with H_in = "
                f"input_size in the first layer and H_in = hidden_size above it.")

    ex = Exercise(name, ("input_size", "hidden_size", "num_layers"), _whole_number(name, call), _mistakes(kind),
                  atol=0.0, rtol=0.0, dtype=torch.float64, wording=wording, oracle_name=f"nn.{kind.upper()}",
                  passed=f"matches nn.{kind.upper()} for {len(SIZES)} sizes (1 to 3 layers, hidden larger and "
                         f"smaller than the input)")
    return ex, cases


@student_facing
def check_parameter_count(fn: Any, kind: str = "gru") -> None:
    """Grade ``fn(input_size, hidden_size, num_layers) -> int`` against ``nn.RNN``/``nn.GRU``/``nn.LSTM``.

    Prints one line on success; raises :class:`CheckFailed` with what to fix otherwise.
    """
    grade(fn, *build_parameter_count(kind, getattr(fn, "__name__", "count")))


BUDGET_CASES = (("gru", 1, 1000), ("lstm", 1, 1000), ("gru", 1, 390), ("lstm", 8, 5000), ("gru", 3, 20000),
                ("lstm", 2, 40))   # 390 is exactly nn.GRU(1, 10)'s count: "at most" includes it


def _module_count(kind: str, H_in: int, H: int) -> int:
    return sum(p.numel() for p in MODULES[kind](H_in, H).parameters())


def _largest(count: Callable[[int], int], budget: int, strict: bool = False) -> int:
    """The largest H >= 1 with count(H) <= budget (< with ``strict``), or 0 if none."""
    H = 0
    while count(H + 1) < budget or (not strict and count(H + 1) == budget):
        H += 1
    return H


def _budget_mistakes() -> tuple[Mistake, ...]:
    one = lambda kind, i, b, **kw: _largest(lambda h: _count(GATES[kind], i, h, 1, **kw), b)  # noqa: E731
    other = {"gru": "lstm", "lstm": "gru"}
    out = [
        ("the count must stay at most the budget (<=), and a size whose count equals the budget is allowed: "
         "use <= where you used <",
         lambda kind, i, b: _largest(lambda h: _count(GATES[kind], i, h, 1), b, strict=True)),
        ("this is the smallest size that exceeds the budget, one too many: return the last H that still fits",
         lambda kind, i, b: one(kind, i, b) + 1),
        ("one bias vector per gate block was counted; nn.GRU and nn.LSTM keep two (b_ih and b_hh)",
         lambda kind, i, b: one(kind, i, b, biases=1)),
        ("the gate blocks of the other kind were counted (an LSTM has 4 blocks i, f, g, o; a GRU 3, r, z, n)",
         lambda kind, i, b: one(other[kind], i, b)),
    ]
    return tuple(Mistake(label, "", fn) for label, fn in out)


def build_hidden_for_budget(name: str = "hidden_for_budget") -> tuple[Exercise, list[Case]]:
    """The exercise ``hidden_for_budget(kind, input_size, budget)`` and its fixed budgets."""
    cases = []
    for kind, H_in, budget in BUDGET_CASES:
        case = Case({"kind": kind, "input_size": H_in, "budget": budget}, [_COUNT], [],
                    f"kind={kind!r}, input_size={H_in}, budget={budget}")
        want = _largest(lambda h: _module_count(kind, H_in, h), budget)
        case.expected = [torch.tensor(float(want), dtype=torch.float64)]
        cases.append(case)

    def call(case: Case) -> str:
        kind, H_in, budget = case.args.values()
        return f"{name}({kind!r}, {H_in}, {budget})"

    def wording(case: Case, got: list[Tensor], mism: list[Mismatch | None], named: Mistake | None,
                others: Sequence) -> str:
        kind, H_in, budget = case.args.values()
        answer, want = _number(got[0]), _number(case.expected[0])
        got_count = _module_count(kind, H_in, answer) if answer >= 1 else 0
        detail = (f"{call(case)} returned {answer}, whose nn.{kind.upper()}({H_in}, {answer}) has {got_count} "
                  f"parameters; expected {want} ({_module_count(kind, H_in, want)} parameters, while {want + 1} "
                  f"would need {_module_count(kind, H_in, want + 1)})")
        if named is not None:
            return f"{name}: {detail}: {named.label}."
        return (f"{name}: {detail}. A one-layer nn.{kind.upper()} has {GATES[kind]} blocks × (H·H_in + H·H + 2H) "
                f"parameters; increase H while that stays at most the budget.")

    ex = Exercise(name, ("kind", "input_size", "budget"), _whole_number(name, call), _budget_mistakes(),
                  atol=0.0, rtol=0.0, dtype=torch.float64, wording=wording, oracle_name="nn.GRU and nn.LSTM",
                  passed=f"the largest hidden size within the budget, for nn.GRU and nn.LSTM, in {len(BUDGET_CASES)} "
                         f"cases (one budget met exactly)")
    return ex, cases


#: The exercises of this module, for the catalogue tests (see :mod:`._engine`).
EXERCISES: dict[str, Builder] = {
    **{f"count_{kind}": functools.partial(build_parameter_count, kind) for kind in GATES},
    "hidden_for_budget": build_hidden_for_budget,
}


@student_facing
def check_hidden_for_budget(fn: Any) -> None:
    """Grade ``fn(kind, input_size, budget) -> int``: the largest H whose one-layer nn.GRU/nn.LSTM has at most
    ``budget`` parameters. Prints one line on success; raises :class:`CheckFailed` with what to fix otherwise.
    """
    grade(fn, *build_hidden_for_budget(getattr(fn, "__name__", "hidden_for_budget")))
