"""Does a checker hand the named mistake to grading as data (its catalogue label), not only as words?"""
from __future__ import annotations

import pytest
import torch

from course_lib.checkers import CheckFailed, check_lstm_cell, check_parameter_count, mistakes


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
