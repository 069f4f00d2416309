"""Does a checker hand the named mistake to grading as data (its catalogue label), not only as words?"""
from __future__ import annotations

import inspect

import pytest
import torch

from course_lib import checkers
from course_lib.checkers import CheckFailed, check_lstm_cell, check_parameter_count, mistakes
from course_lib.checkers._engine import oracle_leaves, run_exercise


def lstm_cell_fiog(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    f, i, g, o = (input @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def lstm_cell_off(input, hx, w_ih, w_hh, b_ih, b_hh):
    h, c = hx
    i, f, g, o = (input @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g) + 0.25
    return torch.sigmoid(o) * torch.tanh(c), c


def test_a_catalogued_mistake_travels_on_check_failed():
    label = next(m.label for m in mistakes.LSTM_CELL if m.fn.keywords == {"order": "figo"})
    with pytest.raises(CheckFailed) as info:
        check_lstm_cell(lstm_cell_fiog)
    assert info.value.mistakes == (label,)
    assert label in str(info.value)


def test_a_wrong_answer_no_entry_fits_carries_no_mistake():
    with pytest.raises(CheckFailed) as info:
        check_lstm_cell(lstm_cell_off)
    assert info.value.mistakes == ()


def test_parameter_count_mistakes_are_named_too():
    with pytest.raises(CheckFailed) as info:
        check_parameter_count(lambda input_size, hidden_size, num_layers: sum(         # one bias per block
            4 * (hidden_size * (input_size if k == 0 else hidden_size) + hidden_size ** 2 + hidden_size)
            for k in range(num_layers)), kind="lstm")
    assert len(info.value.mistakes) == 1 and info.value.mistakes[0] in str(info.value)


def _as_student(ex, mistake):
    """The mistake's function under the exercise's signature, as a student would write it."""
    def student(*args, **kwargs):
        return mistake.fn(*args, **kwargs)
    params = [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in ex.params]
    params += [inspect.Parameter(k, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=v)
               for k, v in ex.call_kwargs.items()]
    student.__signature__ = inspect.Signature(params)
    student.__name__ = ex.name
    return student


def _answers(ex, mistake, cases):
    """What ``mistake`` returns on every case (None where it cannot run at that case's shapes)."""
    out = []
    for case in cases:
        try:
            with torch.no_grad():
                out.append(oracle_leaves(ex, mistake.fn(*case.args64().values(), **case.kwargs), case))
        except Exception:  # noqa: BLE001 - a mistake that cannot happen at these shapes
            out.append(None)
    return out


def _same_answers(a, b):
    return all(x is None or y is None or all(torch.allclose(s, t, equal_nan=True) for s, t in zip(x, y))
               for x, y in zip(a, b))


@pytest.mark.parametrize("name", checkers.exercises())
def test_every_catalogued_mistake_is_named_as_data_when_made(name):
    """Does a function that makes exactly one catalogued mistake fail with that mistake's label on the CheckFailed
    (or with the label of an earlier entry that gives the same answers on every case, which the cases cannot
    tell apart)? Exercises are found in every checker module's EXERCISES, so a new checker is covered too."""
    ex, cases = checkers.exercises()[name]()
    assert ex.mistakes, f"{name}: the exercise has no catalogue of named mistakes"
    by_label = {m.label: m for m in ex.mistakes}
    for mistake in ex.mistakes:
        with pytest.raises(CheckFailed) as info:
            run_exercise(_as_student(ex, mistake), ex, cases)
        named = info.value.mistakes
        assert named, f"{name}: making the mistake {mistake.label!r} was not named: {info.value}"
        if mistake.label not in named:
            twins = [by_label[label] for label in named]
            assert all(_same_answers(_answers(ex, mistake, cases), _answers(ex, t, cases)) for t in twins), \
                f"{name}: making the mistake {mistake.label!r} was named {named}: {info.value}"
