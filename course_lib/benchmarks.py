"""Timing course_lib's recurrent layers against ``torch.nn``: the numbers behind the benchmarks page.

Four implementations of the same layer, given the same weights and the same input:

- ``readable``  :func:`course_lib.reference.lstm` (and ``rnn``, ``gru``): one matmul per gate, as in the equations
- ``fast``      :func:`course_lib.reference.fast_lstm` (and ``fast_rnn``, ``fast_gru``): input projection
                hoisted out of the loop, gates fused into one recurrent matmul per step
- ``native``    ``torch.nn`` with oneDNN disabled: PyTorch's own C++ loop, the baseline of every ratio
- ``oneDNN``    ``torch.nn`` as shipped: oneDNN's fused RNN kernels on CPU

:func:`reference_speed` times forward and forward+backward for each and returns
:class:`Timing` rows; :func:`format_reference_speed` prints them as a table with each time's
ratio to ``native``. The variants are timed in interleaved rounds (one call of each per round,
median over rounds), so a neighbour's load on a shared machine slows them alike and the
ratios stay meaningful even when the absolute times do not.

Used by ``benchmarks/reference_speed.py`` (the full table) and ``book/appendix/benchmarks.md``
(a quick table measured when the book is built). :func:`machine` says where a table was measured.
"""
from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from pathlib import Path

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


#: The three shapes of issue 6: a typical training batch, one long sequence, a wide layer.
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


def _median_rounds(calls: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median milliseconds per call, timing one call of each in every round (after one warm-up round)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for round_ in range(repeats + 1):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            if round_:                       # round 0 warms up caches and allocators
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(ts) for name, ts in times.items()}


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
        fwd = _median_rounds({n: c[0] for n, c in calls.items()}, repeats)
        bwd = _median_rounds({n: c[1] for n, c in calls.items()}, repeats)
    return [Timing(kind, shape.name, n, fwd[n], bwd[n], fwd[n] / fwd["native"], bwd[n] / bwd["native"])
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


def machine() -> str:
    """Where figures were measured: cores, CPU model, Python and PyTorch versions, in one line."""
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"{len(os.sched_getaffinity(0))} cores ({model}), Python {platform.python_version()}, "
            f"torch {torch.__version__}")
