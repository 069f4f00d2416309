"""Tests for course_lib.measure.timing: the median timer every measured speed goes through."""
import pytest

from course_lib.measure import timing
from course_lib.measure.timing import machine, median_seconds


class FakeClock:
    """A clock that advances only when a timed call says how long it took."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def call_taking(self, durations, log, name):
        durations = iter(durations)

        def call():
            log.append(name)
            self.now += next(durations)
        return call


def test_median_seconds_interleaves_rounds_and_skips_the_warmup(monkeypatch):
    """Is every round one call of each, and is each time the median of the timed rounds only?"""
    clock, log = FakeClock(), []
    monkeypatch.setitem(timing.CLOCKS, "wall", clock)
    calls = {"a": clock.call_taking([100.0, 3.0, 1.0, 2.0], log, "a"),     # 100 s: the warm-up round
             "b": clock.call_taking([50.0, 10.0, 30.0, 20.0], log, "b")}
    assert median_seconds(calls, repeats=3, warmup=1) == {"a": 2.0, "b": 20.0}
    assert log == ["a", "b"] * 4


def test_median_seconds_refuses_unknown_clocks_and_no_repeats():
    with pytest.raises(ValueError, match="clock must be 'cpu' .* or 'wall', got 'gpu'"):
        median_seconds({"f": lambda: None}, repeats=1, clock="gpu")
    with pytest.raises(ValueError, match="repeats must be at least 1, got 0"):
        median_seconds({"f": lambda: None}, repeats=0)


def test_machine_names_cores_python_and_torch():
    import torch

    line = machine()
    assert " cores (" in line and f"torch {torch.__version__}" in line and "Python 3." in line
