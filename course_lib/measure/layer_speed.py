"""The speed of course_lib's recurrent layers against ``torch.nn``: the numbers behind the benchmarks page.

Four implementations of the same layer, given the same weights and the same input:

- ``readable``  :func:`course_lib.reference.lstm` (and ``rnn``, ``gru``): one matmul per gate, as in the equations
- ``fast``      :func:`course_lib.reference.fast_lstm` (and ``fast_rnn``, ``fast_gru``): input projection
                hoisted out of the loop, gates fused into one recurrent matmul per step
- ``native``    ``torch.nn`` with oneDNN disabled: PyTorch's own C++ loop, the baseline of every ratio
- ``oneDNN``    ``torch.nn`` as shipped: oneDNN's fused RNN kernels on CPU

:func:`reference_speed` times forward and forward+backward for each and returns
:class:`Timing` rows; :func:`format_reference_speed` prints them as a table with each time's
ratio to ``native``. The variants are timed side by side by
:func:`course_lib.measure.timing.median_seconds` (one call of each per round, median over rounds),
so a neighbour's load on a shared machine slows them alike and the ratios stay meaningful even
when the absolute times do not.

Used by ``benchmarks/reference_speed.py`` (the full table) and ``book/appendix/benchmarks.md``
(a quick table measured when the book is built); :func:`course_lib.measure.timing.machine` says
where a table was measured.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from course_lib.measure.timing import median_seconds
from course_lib.reference import fast_gru, fast_lstm, fast_rnn, gru, lstm, rnn, weights_of

#: kind -> (torch.nn module, readable layer, fast layer)
KINDS = {"rnn": (nn.RNN, rnn, fast_rnn), "lstm": (nn.LSTM, lstm, fast_lstm), "gru": (nn.GRU, gru, fast_gru)}
VARIANTS = ("readable", "fast", "native", "oneDNN")


@dataclass(frozen=True)
class Shape:
    """One benchmark shape: a (batch, length, input) sequence into a layer of ``hidden`` units."""

    name: str
    batch: int
    length: int
    input: int
    hidden: int


#: The three benchmark shapes: a typical training batch, one long sequence, a wide layer.
SHAPES = (
    Shape("batch 32 x length 100 x hidden 128", 32, 100, 128, 128),
    Shape("batch 1 x length 1000 x hidden 128", 1, 1000, 128, 128),
    Shape("batch 32 x length 100 x hidden 512", 32, 100, 512, 512),
)


@dataclass(frozen=True)
class Timing:
    """Median times (milliseconds) of one variant of one layer on one shape, and their ratios to ``native``."""

    kind: str
    shape: str
    variant: str
    forward_ms: float
    backward_ms: float          # forward + backward
    forward_ratio: float        # forward_ms / native forward_ms
    backward_ratio: float       # backward_ms / native backward_ms


def _calls(kind: str, shape: Shape) -> dict[str, tuple[Callable[[], None], Callable[[], None]]]:
    """variant -> (forward call, forward+backward call), all on the same weights and input."""
    Module, readable, fast = KINDS[kind]
    torch.manual_seed(0)
    net = Module(shape.input, shape.hidden, batch_first=True)
    x = torch.randn(shape.batch, shape.length, shape.input)    # (N, L, H_in)
    weights = weights_of(net)
    layers = {
        "readable": lambda: readable(x, None, weights, batch_first=True),
        "fast": lambda: fast(x, None, weights, batch_first=True),
        "native": lambda: net(x),
        "oneDNN": lambda: net(x),
    }
    calls = {}
    for name, layer in layers.items():
        onednn = name == "oneDNN"

        def forward(layer=layer, onednn=onednn):
            with torch.backends.mkldnn.flags(enabled=onednn), torch.no_grad():
                layer()

        def backward(layer=layer, onednn=onednn):
            net.zero_grad(set_to_none=True)
            with torch.backends.mkldnn.flags(enabled=onednn):
                layer()[0].sum().backward()

        calls[name] = (forward, backward)
    return calls


def time_layer(kind: str, shape: Shape, repeats: int = 7,
               variants: Sequence[str] = VARIANTS) -> list[Timing]:
    """Time the variants (all four by default; ``native`` is always timed) of one layer kind on one shape."""
    if kind not in KINDS:
        raise ValueError(f"kind should be one of {sorted(KINDS)}, got {kind!r}")
    if repeats < 1:
        raise ValueError(f"repeats should be at least 1, got {repeats}")
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise ValueError(f"variants should be among {VARIANTS}, got {sorted(unknown)}")
    variants = [v for v in VARIANTS if v in variants or v == "native"]
    calls = {name: call for name, call in _calls(kind, shape).items() if name in variants}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)    # oneDNN's flags warn about Intel-GPU TF32
        fwd = median_seconds({n: c[0] for n, c in calls.items()}, repeats=repeats)   # one warm-up round
        bwd = median_seconds({n: c[1] for n, c in calls.items()}, repeats=repeats)
    ms = {n: (fwd[n] * 1e3, bwd[n] * 1e3) for n in variants}
    return [Timing(kind, shape.name, n, *ms[n], ms[n][0] / ms["native"][0], ms[n][1] / ms["native"][1])
            for n in variants]


def reference_speed(kinds: Sequence[str] = tuple(KINDS), shapes: Sequence[Shape] = SHAPES,
                    repeats: int = 7) -> list[Timing]:
    """Every variant of every kind on every shape: the reference-speed table as :class:`Timing` rows."""
    return [t for shape in shapes for kind in kinds for t in time_layer(kind, shape, repeats)]


def format_reference_speed(rows: Sequence[Timing]) -> str:
    """The rows as a fixed-width table, one block per shape; ratio = time / native."""
    lines = []
    for shape in dict.fromkeys(r.shape for r in rows):
        lines += [shape, f"{'kind':5} {'variant':9} {'forward ms':>11} {'ratio':>6} {'fwd+bwd ms':>11} {'ratio':>6}"]
        lines += [f"{r.kind:5} {r.variant:9} {r.forward_ms:11.2f} {r.forward_ratio:6.2f} "
                  f"{r.backward_ms:11.2f} {r.backward_ratio:6.2f}" for r in rows if r.shape == shape]
        lines.append("")
    return "\n".join(lines)


def ratio_span(rows: Sequence[Timing], variant: str) -> tuple[float, float]:
    """The smallest and largest ratio to ``native`` of one variant, forward and forward+backward alike."""
    ratios = [x for r in rows if r.variant == variant for x in (r.forward_ratio, r.backward_ratio)]
    if not ratios:
        raise ValueError(f"no rows for variant {variant!r}; variants are {VARIANTS}")
    return min(ratios), max(ratios)

