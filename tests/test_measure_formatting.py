"""Tests for course_lib.measure.formatting: ratios and tables as the book's text writes them."""
import pytest

from course_lib.measure.formatting import format_span, format_table


def test_format_span_writes_a_range_or_one_ratio():
    assert format_span([0.42, 0.47]) == "0.4-0.5x"
    assert format_span([3.96, 4.04]) == "4.0x"               # both ends round to the same digits
    assert format_span([0.75, 0.5, 0.6], digits=2) == "0.50-0.75x"
    with pytest.raises(ValueError, match="at least one ratio"):
        format_span([])


def test_format_table_pads_columns_and_checks_row_length():
    text = format_table([("rnn", 10, 0.5), ("lstm", 100, 0.25)], ["kind", "T", "mse"])
    assert text.splitlines() == ["kind    T   mse", "----  ---  ----", "rnn    10   0.5", "lstm  100  0.25"]
    with pytest.raises(ValueError, match="every row needs 3 cells"):
        format_table([("rnn", 10)], ["kind", "T", "mse"])
