"""Unit tests of :mod:`course_lib.grading.outcomes`: is a part's outcome read back as it was written, and is a
damaged file refused in one sentence instead of being half read?"""
from __future__ import annotations

import pytest

from course_lib.grading.outcomes import Outcome, PartOutcome, outcomes_path, read_outcomes, write_outcomes


def test_outcomes_round_trip(tmp_path):
    parts = [PartOutcome("lstm_cell_check", Outcome.MISTAKE, ["the input and forget gates look swapped"],
                         message="lstm_cell: the input and forget gates look swapped."),
             PartOutcome("lstm_layer_check", Outcome.POLICY, shortcuts=["nn.LSTMCell"]),
             PartOutcome("lstm_backward_check", Outcome.CHECK_FAILED, unattempted=True, cells_stopped=1)]
    path = write_outcomes(tmp_path, "lstm", parts)
    assert path == outcomes_path(tmp_path, "lstm") and path.name == "lstm.outcomes.json"
    assert read_outcomes(tmp_path) == {"lstm": {p.part: p for p in parts}}
    assert list(tmp_path.iterdir()) == [path]               # no temporary file left behind


def test_a_damaged_file_is_refused_with_one_sentence(tmp_path):
    (tmp_path / "lstm.outcomes.json").write_text('{"format": 1, "parts": [{"part": "x", "outcome": "great"}]}')
    with pytest.raises(ValueError, match=r"expected a grading outcomes file .* grade that submission again"):
        read_outcomes(tmp_path)
