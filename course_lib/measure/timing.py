"""The one timer behind every measured speed: median seconds over interleaved rounds, and where it ran.

:func:`median_seconds` times several calls side by side: every round calls each of them once, in
order, and each call's time is the median over rounds. A neighbour's load on a shared machine
then slows all of them alike, so their ratios stay meaningful even when the absolute times do not.
With one call it is the plain median of ``repeats`` timed calls after ``warmup`` untimed ones.

:func:`machine` says in one line where a figure was measured.
"""
from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

__all__ = ["CLOCKS", "median_seconds", "machine"]

#: ``"cpu"``: the process's CPU time, which a busy shared machine disturbs far less than the wall
#: clock; ``"wall"``: elapsed time (``time.perf_counter``).
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def median_seconds(calls: Mapping[str, Callable[[], object]], *, repeats: int, warmup: int = 1,
                   clock: str = "wall") -> dict[str, float]:
    """Median seconds per call of each of ``calls`` (name -> function of no arguments).

    ``warmup`` untimed rounds warm caches and allocators, then ``repeats`` timed rounds; every
    round calls each function once, in the order given. ``clock`` is ``"cpu"`` or ``"wall"``
    (:data:`CLOCKS`). Returns name -> median seconds.
    """
    if clock not in CLOCKS:
        raise ValueError(f"clock must be 'cpu' (process time) or 'wall', got {clock!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    tick = CLOCKS[clock]
    times: dict[str, list[float]] = {name: [] for name in calls}
    for round_ in range(warmup + repeats):
        for name, call in calls.items():
            start = tick()
            call()
            if round_ >= warmup:
                times[name].append(tick() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


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
