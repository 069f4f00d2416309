"""The report command's answers to bad input: one sentence, exit status 2, and nothing made on disk."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from course_lib.instructor.report import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("argv, says", [
    (["02_lstm"], "expected a gradebook at sqlite:///"),
    (["a/b"], "expected an assignment name such as '02_lstm'"),
])
def test_bad_input_is_one_sentence_and_makes_nothing(tmp_path, capsys, argv, says):
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    with pytest.raises(SystemExit) as info:
        main([*argv, "--root", str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nbgrader_config.py"]     # no empty gradebook made


def test_a_folder_without_course_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["02_lstm", "--root", str(tmp_path)])
    assert "expected an nbgrader course directory with nbgrader_config.py" in capsys.readouterr().err


def _class(answers: dict[str, str]):
    from course_lib.instructor.classdata import ClassData, Part, StudentRecord
    students = [StudentRecord(s, 1.0, {"p_check": 1.0}, {}, {"p": src}) for s, src in answers.items()]
    return ClassData("a", Path("."), 1.0, [Part("p_check", "nb", 1.0, True)], students, [], {}, {})


def test_identical_one_line_answers_are_too_short_to_flag_and_long_ones_are_flagged():
    from course_lib.instructor.report import analyse
    short = "def f(x, w):\n    return torch.tanh(x @ w.T + 1.0)\n"
    report = analyse(_class({"a": short, "b": short}))
    assert report.pairs[0].similarity == 1.0 and report.flagged == []
    long = (ROOT / "tests" / "fixtures" / "class_report" / "02_lstm" / "bo.py").read_text()
    report = analyse(_class({"a": long, "b": long, "c": short}))
    assert [(p.a, p.b) for p in report.flagged] == [("a", "b")]
