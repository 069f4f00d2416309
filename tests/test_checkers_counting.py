"""Tests of course_lib.checkers.counting: parameter counts against nn.GRU's own, the largest hidden size within a
budget, and each named mistake, written the way a student would, named in the message."""
from __future__ import annotations

import pytest
from torch import nn

from course_lib import checkers
from course_lib.checkers import CheckFailed


def failure(check, *args, **kwargs) -> str:
    with pytest.raises(CheckFailed) as info:
        check(*args, **kwargs)
    return str(info.value)


def not_written(*args, **kwargs):
    raise NotImplementedError()


def count_right(i, h, n):
    return sum(3 * (h * (i if k == 0 else h) + h * h + 2 * h) for k in range(n))


@pytest.mark.parametrize("fn, words", [
    (lambda i, h, n: sum(3 * (h * (i if k == 0 else h) + h * h + h) for k in range(n)), "one bias vector"),
    (lambda i, h, n: sum(3 * (h * i + h * h + 2 * h) for k in range(n)), "layers above the first"),
    (lambda i, h, n: sum(4 * (h * (i if k == 0 else h) + h * h + 2 * h) for k in range(n)), "that of an LSTM"),
    (lambda i, h, n: float(count_right(i, h, n)), "an int"),
    (not_written, "not implemented yet"),
])
def test_parameter_count_names_the_mistake(fn, words):
    assert words in failure(checkers.check_parameter_count, fn, kind="gru")


def test_parameter_count_accepts_the_count_of_nn_gru(capsys):
    checkers.check_parameter_count(count_right, kind="gru")
    assert sum(p.numel() for p in nn.GRU(7, 4, num_layers=3).parameters()) == count_right(7, 4, 3)



@pytest.mark.parametrize("fn, words", [
    (lambda kind, i, b: _largest_under(kind, i, b, strict=True), "use <= where you used <"),
    (lambda kind, i, b: _largest_under(kind, i, b) + 1, "smallest size that exceeds the budget"),
    (lambda kind, i, b: _largest_under({"gru": "lstm", "lstm": "gru"}[kind], i, b), "other kind"),
    (lambda kind, i, b: float(_largest_under(kind, i, b)), "an int"),
    (not_written, "not implemented yet"),
])
def test_hidden_for_budget_names_the_mistake(fn, words):
    assert words in failure(checkers.check_hidden_for_budget, fn)


def _largest_under(kind, input_size, budget, strict=False):
    module = {"gru": nn.GRU, "lstm": nn.LSTM}[kind]
    H = 0
    while True:
        n = sum(p.numel() for p in module(input_size, H + 1).parameters())
        if n > budget or (strict and n == budget):
            return H
        H += 1


def test_hidden_for_budget_accepts_the_largest_size_within_the_budget(capsys):
    checkers.check_hidden_for_budget(_largest_under)
    assert "largest hidden size within the budget" in capsys.readouterr().out
