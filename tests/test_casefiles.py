"""Tests for tests/casefiles.py, the one parser of the fixture files the grading tests hand in."""
import pytest

from casefiles import read_case, read_cases


def test_a_file_with_every_key_reads_into_its_fields(tmp_path):
    """Are the header's keys, the description, the answer cells and the inserted cells each read where they go?"""
    path = tmp_path / "02_lstm" / "eve.py"
    path.parent.mkdir()
    path.write_text("# Swaps two gates:\n# in the cell.\n# assignment: 02_lstm\n"
                    "# expect: lstm_cell_check=0, lstm_layer_check=0.5\n# feedback: gates look swapped\n"
                    "# needs: isolation\n# json: drop_metadata lstm_cell\n# json: retag x\n\n"
                    "# %% lstm_cell\n\ndef lstm_cell():\n    pass\n\n\n# %% after lstm_cell\nprint(1)\n")
    case = read_case(path)
    assert (case.student, case.assignment) == ("eve", "02_lstm")
    assert case.description == "Swaps two gates: in the cell."
    assert case.expect == {"lstm_cell_check": 0.0, "lstm_layer_check": 0.5}
    assert (case.feedback, case.needs_isolation) == ("gates look swapped", True)
    assert case.json_edits == [("drop_metadata", "lstm_cell"), ("retag", "x")]
    assert case.replace == {"lstm_cell": "def lstm_cell():\n    pass"} and case.after == {"lstm_cell": "print(1)"}


def test_message_is_feedback_and_the_folder_names_the_assignment(tmp_path):
    """Do the practice submissions' 'message' key and their folder-given assignment read as the other files'?"""
    (tmp_path / "01_rnn").mkdir()
    (tmp_path / "01_rnn" / "bo.py").write_text("# expect: rnn_cell_check=0\n# message: relu\n# %% rnn_cell\nx = 1\n")
    (tmp_path / "01_rnn" / "al.py").write_text("# %% rnn_cell\nx = 2\n")
    al, bo = read_cases(tmp_path / "01_rnn")
    assert (al.student, bo.student, bo.assignment, bo.feedback, al.feedback) == ("al", "bo", "01_rnn", "relu", "")
    assert not bo.needs_isolation and bo.json_edits == []


def test_a_file_without_cells_or_with_a_bad_expect_is_refused_by_name(tmp_path):
    empty, bad = tmp_path / "empty.py", tmp_path / "bad.py"
    empty.write_text("# only a header\n# expect: a=0\n")
    bad.write_text("# expect: a=zero\n# %% a\nx = 1\n")
    with pytest.raises(ValueError, match=r"empty\.py: no '# %% <grade_id>' cell found"):
        read_case(empty)
    with pytest.raises(ValueError, match=r"bad\.py: expect lists grade_id=score pairs, got 'a=zero'"):
        read_case(bad)
