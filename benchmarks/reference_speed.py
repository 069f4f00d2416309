"""How fast are course_lib's readable and fast recurrent layers next to torch.nn?

    .venv/bin/python benchmarks/reference_speed.py [--repeats 7] [--threads 2] [--quick]

For each kind (rnn, lstm, gru) and shape it times, in one process, the median of several
repetitions of forward and forward+backward for:

- ``readable``   course_lib.reference.{rnn,lstm,gru}: per-gate matmuls, as in the equations
- ``fast``       course_lib.reference.fast_{rnn,lstm,gru}: input projection hoisted, gates fused
- ``native``     torch.nn with oneDNN disabled: PyTorch's own C++ loop (the baseline)
- ``oneDNN``     torch.nn as shipped: oneDNN's fused RNN kernels on CPU where available

and prints each time with its ratio to ``native``. The course's target: ``fast`` within 1.2x of
``native`` on every shape. Timings are medians; the machine may be shared, so read ratios,
which are measured side by side, rather than absolute times.
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

from course_lib.reference import fast_gru, fast_lstm, fast_rnn, gru, lstm, rnn, weights_of

MODULES = {"rnn": (nn.RNN, rnn, fast_rnn), "lstm": (nn.LSTM, lstm, fast_lstm), "gru": (nn.GRU, gru, fast_gru)}


@dataclass(frozen=True)
class Shape:
    name: str
    batch: int
    length: int
    input: int
    hidden: int


SHAPES = [
    Shape("batch 32 x length 100 x hidden 128", 32, 100, 128, 128),
    Shape("batch 1 x length 1000 x hidden 128", 1, 1000, 128, 128),
    Shape("batch 32 x length 100 x hidden 512", 32, 100, 512, 512),
]


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def bench(kind: str, shape: Shape, repeats: int) -> dict[str, tuple[float, float]]:
    Module, readable, fast = MODULES[kind]
    torch.manual_seed(0)
    net = Module(shape.input, shape.hidden, batch_first=True)
    x = torch.randn(shape.batch, shape.length, shape.input)
    weights = weights_of(net)

    def run(call, backward: bool):
        def go():
            if backward:
                net.zero_grad(set_to_none=True)
                call()[0].sum().backward()
            else:
                with torch.no_grad():
                    call()
        return go

    variants = {
        "readable": lambda: readable(x, None, weights, batch_first=True),
        "fast": lambda: fast(x, None, weights, batch_first=True),
        "native": lambda: net(x),
        "oneDNN": lambda: net(x),
    }
    out = {}
    for name, call in variants.items():
        mkldnn = name == "oneDNN"
        with torch.backends.mkldnn.flags(enabled=mkldnn):
            out[name] = (median_ms(run(call, False), repeats), median_ms(run(call, True), repeats))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="first shape only, 3 repeats")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shapes = SHAPES[:1] if args.quick else SHAPES
    repeats = 3 if args.quick else args.repeats
    print(f"torch {torch.__version__}, {args.threads} threads, median of {repeats}; ratio = time / native\n")
    header = f"{'kind':5} {'variant':9} {'forward ms':>11} {'ratio':>6} {'fwd+bwd ms':>11} {'ratio':>6}"
    for shape in shapes:
        print(shape.name)
        print(header)
        for kind in MODULES:
            res = bench(kind, shape, repeats)
            base_f, base_b = res["native"]
            for name, (f, b) in res.items():
                print(f"{kind:5} {name:9} {f:11.2f} {f / base_f:6.2f} {b:11.2f} {b / base_b:6.2f}")
        print()


if __name__ == "__main__":
    main()
