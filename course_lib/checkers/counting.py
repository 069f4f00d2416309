"""Checker for counting the parameters of a recurrent layer: ``check_parameter_count``.

The student's function is ``count(input_size, hidden_size, num_layers) -> int``, the number of
parameters of ``nn.RNN``/``nn.GRU``/``nn.LSTM`` (``kind``) with those sizes. The oracle is the
module itself, ``sum(p.numel() for p in module.parameters())``, so the answer is PyTorch's count:
G gate blocks (RNN 1, GRU 3, LSTM 4), each with an input matrix, a recurrent matrix and two biases,
and layers above the first reading the layer below's h_t (input size H there).
"""
from __future__ import annotations

import numbers
from typing import Any, Callable

from torch import nn

from ._core import call_student, check_callable, fail, student_facing

__all__ = ["check_parameter_count"]

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
MODULES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
GATE_NAMES = {"rnn": "one block", "gru": "3 gate blocks (r, z, n)", "lstm": "4 gate blocks (i, f, g, o)"}
SIZES = ((3, 5, 1), (10, 20, 2), (7, 4, 3))   # (input_size, hidden_size, num_layers); H < H_in in the last


def _count(G: int, H_in: int, H: int, layers: int, *, biases: int = 2, recurrent: bool = True,
           upper_in: str = "H", only_first: bool = False) -> int:
    """Parameters of a G-block recurrent stack, with switches for the mistakes."""
    total = 0
    for k in range(1 if only_first else layers):
        n_in = H_in if k == 0 or upper_in == "H_in" else H
        total += G * (H * n_in + (H * H if recurrent else 0) + biases * H)
    return total


def _mistakes(kind: str) -> list[tuple[str, Callable[[int, int, int], int]]]:
    G = GATES[kind]
    out = [
        ("one bias vector per gate block was counted; PyTorch keeps two, b_ih and b_hh (Keras keeps one for the "
         "LSTM and for a GRU with reset_after=False)", lambda i, h, n: _count(G, i, h, n, biases=1)),
        ("the biases were left out; each gate block has two, b_ih and b_hh, of size H",
         lambda i, h, n: _count(G, i, h, n, biases=0)),
        ("the recurrent matrices W_hh (H × H per block) were left out", lambda i, h, n: _count(G, i, h, n, recurrent=False)),
        ("every layer was counted with input_size inputs; the layers above the first read the hidden state of "
         "the layer below, so their input size is hidden_size", lambda i, h, n: _count(G, i, h, n, upper_in="H_in")),
        ("only the first layer was counted; multiply out every one of the num_layers layers",
         lambda i, h, n: _count(G, i, h, n, only_first=True)),
    ]
    for other, G2 in GATES.items():
        if other != kind:
            out.append((f"the count is that of an {other.upper()} ({GATE_NAMES[other]}); "
                        f"an {kind.upper()} has {GATE_NAMES[kind]}", lambda i, h, n, G2=G2: _count(G2, i, h, n)))
    return out


@student_facing
def check_parameter_count(fn: Any, kind: str = "gru") -> None:
    """Grade ``fn(input_size, hidden_size, num_layers) -> int`` against ``nn.RNN``/``nn.GRU``/``nn.LSTM``.

    Prints one line on success; raises :class:`CheckFailed` with what to fix otherwise.
    """
    if kind not in GATES:
        raise ValueError(f"kind must be one of {sorted(GATES)}, got {kind!r}")
    name = getattr(fn, "__name__", "count")
    check_callable(fn, name, ("input_size", "hidden_size", "num_layers"))
    for H_in, H, layers in SIZES:
        got = call_student(fn, name, {"input_size": H_in, "hidden_size": H, "num_layers": layers})
        expected = sum(p.numel() for p in MODULES[kind](H_in, H, num_layers=layers).parameters())
        call = f"{name}({H_in}, {H}, {layers})"
        if isinstance(got, bool) or not isinstance(got, numbers.Integral):
            fail(f"{name}: {call} returned {got!r} ({type(got).__name__}); expected a whole number, an int.")
        if int(got) == expected:
            continue
        for label, wrong in _mistakes(kind):
            if wrong(H_in, H, layers) == int(got):
                fail(f"{name}: {call} returned {int(got)}, nn.{kind.upper()} has {expected}: {label}.", (label,))
        G = GATES[kind]
        fail(f"{name}: {call} returned {int(got)}, but nn.{kind.upper()}({H_in}, {H}, num_layers={layers}) has "
             f"{expected} parameters. Per layer: {G} blocks × (H·H_in + H·H + 2H), with H_in = input_size in the "
             f"first layer and H_in = hidden_size above it.")
    print(f"{name}: matches nn.{kind.upper()} for {len(SIZES)} sizes (1 to 3 layers, hidden larger and smaller "
          f"than the input).")
