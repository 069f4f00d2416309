"""How fast are course_lib's readable and fast recurrent layers next to torch.nn?

    .venv/bin/python benchmarks/reference_speed.py [--repeats 7] [--threads 2] [--quick]
    .venv/bin/python benchmarks/reference_speed.py --kinds lstm --shapes 0 2

For each kind (rnn, lstm, gru) and shape it times, in one process, the median of several
repetitions of forward and forward+backward for:

- ``readable``   course_lib.reference.{rnn,lstm,gru}: per-gate matmuls, as in the equations
- ``fast``       course_lib.reference.fast_{rnn,lstm,gru}: input projection hoisted, gates fused
- ``native``     torch.nn with oneDNN disabled: PyTorch's own C++ loop (the baseline)
- ``oneDNN``     torch.nn as shipped: oneDNN's fused RNN kernels on CPU where available

and prints each time with its ratio to ``native``. The course's target: ``fast`` within 1.2x of
``native`` on every shape. Timings are medians of interleaved rounds; the machine may be shared,
so read ratios, which are measured side by side, rather than absolute times. The measuring code
lives in :mod:`course_lib.measure.layer_speed`, which the book's appendix page also runs.
"""
from __future__ import annotations

import argparse

import torch

from course_lib.measure.layer_speed import KINDS, SHAPES, format_reference_speed, ratio_span, time_layer
from record import recorded

TARGET = 1.2   # fast / native, on every shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="first shape only, 3 repeats")
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS))
    parser.add_argument("--shapes", nargs="+", type=int, choices=range(len(SHAPES)),
                        default=list(range(len(SHAPES))), help="indices into SHAPES (0, 1, 2)")
    parser.add_argument("--save", action="store_true", help="also write benchmarks/results/reference_speed.txt")
    args = parser.parse_args()
    with recorded("reference_speed", args.save):
        run(args)


def run(args) -> None:
    torch.set_num_threads(args.threads)
    shapes = [SHAPES[0]] if args.quick else [SHAPES[i] for i in args.shapes]
    repeats = 3 if args.quick else args.repeats
    print(f"torch {torch.__version__}, {args.threads} threads, median of {repeats}; ratio = time / native\n",
          flush=True)
    rows = []
    for shape in shapes:
        block = [t for kind in args.kinds for t in time_layer(kind, shape, repeats)]
        print(format_reference_speed(block), flush=True)
        rows += block
    low, high = ratio_span(rows, "fast")
    verdict = "met" if high <= TARGET else "missed"
    print(f"fast / native: {low:.2f}x to {high:.2f}x (target <= {TARGET}x: {verdict})")
    low, high = ratio_span(rows, "oneDNN")
    print(f"oneDNN / native: {low:.2f}x to {high:.2f}x")


if __name__ == "__main__":
    main()
