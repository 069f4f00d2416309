"""The instructor's test cells (course_lib.grading.testcells): is a test cell read strictly into checker calls,
and is anything else refused with a message that says why?
"""
from __future__ import annotations

import re

import pytest

from course_lib.grading.testcells import CheckCall, GradingConfigError, Student, parse_test_cell


def test_a_test_cell_with_hidden_tests_parses_into_checker_calls():
    source = ("# Checks lstm_cell.\n"
              "checkers.check_lstm_cell(lstm_cell)\n"
              "### BEGIN HIDDEN TESTS\n"
              "checkers.check_lstm_cell(lstm_cell, seed=9, batch=2, input_size=3, hidden=6)\n"
              "### END HIDDEN TESTS\n"
              "model = checkers.check_same_model(build, Model, hidden_size=3, convert_fn=copy)\n")
    calls = parse_test_cell(source)
    assert calls == [CheckCall("check_lstm_cell", (Student("lstm_cell"),), {}, 2),
                     CheckCall("check_lstm_cell", (Student("lstm_cell"),),
                               {"seed": 9, "batch": 2, "input_size": 3, "hidden": 6}, 4),
                     CheckCall("check_same_model", (Student("build"), Student("Model")),
                               {"hidden_size": 3, "convert_fn": Student("copy")}, 6)]


@pytest.mark.parametrize("source, why", [
    ("assert lstm_cell(1) == 2", "is not a checker call"),
    ("import os\nchecks.check_lstm_cell(lstm_cell)", "is not a checker call"),
    ("checkers.check_lstm_cell(lstm_cell, seed=make_seed())", "neither a name nor a literal"),
    ("checkers.check_training(train, data=(x_train, y_train))", "neither a name nor a literal"),
    ("checkers.check_lstm_cell(**options)", "`**` arguments"),
    ("# nothing", "calls no checker"),
])
def test_anything_else_in_a_test_cell_is_a_configuration_error(source, why):
    with pytest.raises(GradingConfigError, match=re.escape(why)):
        parse_test_cell(source, "cell_check")
