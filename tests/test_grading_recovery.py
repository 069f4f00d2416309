"""Crash recovery (course_lib.grading.recovery): does a plain re-run grade again exactly the submissions
whose grading was interrupted?
"""
from __future__ import annotations


def test_recover_interrupted_regrades_only_submissions_whose_grading_never_finished(tmp_path):
    """A marker left by a killed run makes the next nbgrader command drop that half-written folder; a
    finished submission (no marker) is kept, so a plain re-run grades each submission exactly once."""
    from course_lib.grading.recovery import MARKER, recover_interrupted
    autograded = tmp_path / "autograded"
    (autograded / "ada" / "01_rnn").mkdir(parents=True)
    (autograded / "ada" / "01_rnn" / "rnn.ipynb").write_text("{}")
    (autograded / "ada" / ("01_rnn" + MARKER)).write_text("started")
    (autograded / "bob" / "01_rnn").mkdir(parents=True)
    (autograded / "bob" / "01_rnn" / "rnn.ipynb").write_text("{}")
    removed = recover_interrupted(str(autograded))
    assert removed == [str(autograded / "ada" / "01_rnn")]
    assert not (autograded / "ada" / "01_rnn").exists()
    assert not (autograded / "ada" / ("01_rnn" + MARKER)).exists()
    assert (autograded / "bob" / "01_rnn" / "rnn.ipynb").exists()
