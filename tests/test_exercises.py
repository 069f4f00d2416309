"""The exercises through nbgrader's own commands, the way an instructor runs a grading round.

One temporary copy of the course goes through ``nbgrader generate_assignment``, ``autograde``,
``generate_feedback`` and ``export`` (the real command-line tools, in a subprocess), with a class of
practice students from ``tools/make_submissions.py``: the instructor's solutions handed in as they
are, the release notebooks handed in untouched, and one student per file in
``tests/fixtures/submissions/<assignment>/`` who makes one realistic mistake. Written answers are
graded "by hand" through nbgrader's gradebook API, as the formgrader does.

Does the release in ``exercises/`` match what nbgrader makes from ``solutions/`` today? Does a correct
notebook get every point, an untouched one none, and a wrong one exactly the points of the parts it
got right, with the mistake named in its feedback? Does the CSV add up?
"""
from __future__ import annotations

import csv
import html
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent           # the venv's bin: nbgrader, and alembic, which nbgrader calls
ASSIGNMENTS = ("01_rnn", "02_lstm", "03_gru", "04_keras_pytorch", "05_attention", "06_language_model",
               "07_seq2seq")
COURSE_ID = "rnn-to-lstm"                    # as in nbgrader_config.py
NOT_IMPLEMENTED = "not implemented yet"      # what a checker says about an untouched function


def _load_make_submissions():
    spec = importlib.util.spec_from_file_location("make_submissions", ROOT / "tools" / "make_submissions.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


make_submissions = _load_make_submissions()


def nbgrader(course: Path, *args: str, timeout: int = 1200) -> str:
    """Run one nbgrader command in ``course``; fail the test with its log if it fails."""
    env = dict(os.environ)
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", KERAS_BACKEND="torch", MPLBACKEND="Agg",
               PYTHONHASHSEED="0", KERAS_HOME=str(course / ".keras"))
    done = subprocess.run([str(BIN / "nbgrader"), *args], cwd=course, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done.stderr


def _nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _notebook_name(assignment: str) -> str:
    (path,) = (ROOT / "solutions" / assignment).glob("*.ipynb")
    return path.stem


def _text(path: Path) -> str:
    """A feedback page as plain text: tags dropped, entities decoded, whitespace collapsed."""
    page = re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8"))
    return re.sub(r"\s+", " ", html.unescape(page))


# ------------------------------------------------------------------------------------------ the round

@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """A fresh course directory after ``nbgrader generate_assignment`` of every assignment."""
    course = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions", course / "solutions", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    nbgrader(course, "generate_assignment", "*")
    return course


@dataclass
class Round:
    course: Path
    fixtures: dict[tuple[str, str], object]          # (assignment, student) -> casefiles.Case
    scores: dict[tuple[str, str], dict[str, float]]  # (assignment, student) -> {grade_id: score}
    points: dict[str, dict[str, float]]              # assignment -> {grade_id: max score}
    manual: dict[str, set[str]]                      # assignment -> grade_ids graded by hand
    csv_rows: list[dict[str, str]]

    def expected(self, assignment: str, student: str) -> dict[str, float]:
        """What each graded cell deserves: full marks unless the fixture says otherwise, zero untouched."""
        points = self.points[assignment]
        if student == "untouched":
            return {grade_id: 0.0 for grade_id in points}
        fx = self.fixtures.get((assignment, student))
        expect = fx.expect if fx is not None else {}
        return {grade_id: expect.get(grade_id, full) for grade_id, full in points.items()}

    def feedback(self, assignment: str, student: str) -> str:
        return _text(self.course / "feedback" / student / assignment / f"{_notebook_name(assignment)}.html")


def _grade_by_hand(course: Path, fixtures: dict) -> dict[str, set[str]]:
    """Give every written answer that was actually written the points the fixture expects (default: all),
    the way an instructor does in the formgrader; returns the grade_ids of the written answers."""
    from nbgrader.api import Gradebook

    manual: dict[str, set[str]] = {a: set() for a in ASSIGNMENTS}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        for assignment in ASSIGNMENTS:
            for submission in gb.find_assignment(assignment).submissions:
                student = submission.student.id
                notebook = gb.find_submission_notebook(_notebook_name(assignment), assignment, student)
                for grade in notebook.grades:
                    if grade.cell.cell_type == "markdown":
                        manual[assignment].add(grade.name)
                    if not grade.needs_manual_grade:
                        continue
                    fx = fixtures.get((assignment, student))
                    grade.manual_score = (fx.expect if fx is not None else {}).get(grade.name, grade.max_score)
                    grade.needs_manual_grade = False
            gb.db.commit()
    return manual


def _read_scores(course: Path) -> tuple[dict, dict]:
    from nbgrader.api import Gradebook

    scores, points = {}, {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        for assignment in ASSIGNMENTS:
            nb = gb.find_notebook(_notebook_name(assignment), assignment)
            points[assignment] = {cell.name: float(cell.max_score) for cell in nb.grade_cells}
            for submission in gb.find_assignment(assignment).submissions:
                student = submission.student.id
                notebook = gb.find_submission_notebook(_notebook_name(assignment), assignment, student)
                scores[(assignment, student)] = {g.name: float(g.score) for g in notebook.grades}
    return scores, points


@pytest.fixture(scope="module")
def graded(generated: Path) -> Round:
    """The whole round: submissions in, autograde, hand grading, feedback, CSV out."""
    course = generated
    fixtures = {(fx.assignment, fx.student): fx for fx in make_submissions.make_submissions(course)}
    nbgrader(course, "autograde", "*")
    manual = _grade_by_hand(course, fixtures)
    nbgrader(course, "generate_feedback", "*")
    nbgrader(course, "export")
    scores, points = _read_scores(course)
    with open(course / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return Round(course, fixtures, scores, points, manual, rows)


def _students(assignment: str) -> list[str]:
    return ["solution", "untouched"] + [fx.student for fx in make_submissions.read_fixtures(assignment)]


# ------------------------------------------------------------------------------------------ the tests

@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercises_are_what_generate_assignment_makes(generated: Path, assignment: str):
    """Is the committed student version exactly what ``nbgrader generate_assignment`` makes now?"""
    committed_dir, fresh_dir = ROOT / "exercises" / assignment, generated / "exercises" / assignment
    assert sorted(p.name for p in committed_dir.iterdir()) == sorted(p.name for p in fresh_dir.iterdir()), \
        f"exercises/{assignment} holds other files than generate_assignment makes; regenerate it"
    for fresh_path in fresh_dir.glob("*.ipynb"):
        committed = nbformat.read(committed_dir / fresh_path.name, as_version=4)
        fresh = nbformat.read(fresh_path, as_version=4)
        assert committed.metadata.get("kernelspec") == fresh.metadata.get("kernelspec")
        assert len(committed.cells) == len(fresh.cells), f"{fresh_path.name}: stale; regenerate exercises/"
        for k, (a, b) in enumerate(zip(committed.cells, fresh.cells)):
            where = f"exercises/{assignment}/{fresh_path.name} cell {k} ({b.get('id')})"
            assert (a.cell_type, a.get("id"), a.source) == (b.cell_type, b.get("id"), b.source), \
                f"{where} differs from solutions/; run `nbgrader generate_assignment {assignment} --force`"
            assert a.metadata == b.metadata, f"{where}: nbgrader metadata differs; regenerate exercises/"
            assert not a.get("outputs"), f"{where} has outputs; the release must be clean"


def test_every_part_has_points_and_a_checker():
    """Does each assignment have graded parts with points, and does each code part say what it checks?"""
    for assignment in ASSIGNMENTS:
        nb = nbformat.read(next((ROOT / "solutions" / assignment).glob("*.ipynb")), as_version=4)
        graded = [c for c in nb.cells if _nbgrader_meta(c).get("grade")]
        assert len(graded) >= 2, f"{assignment}: expected points set per part"
        for cell in graded:
            meta = _nbgrader_meta(cell)
            assert meta["schema_version"] == 3 and meta["points"] > 0
            if cell.cell_type == "code":
                assert meta["locked"], f"{assignment}/{meta['grade_id']}: a test cell must be locked"
                first = cell.source.splitlines()[0]
                assert first.startswith("# Checks"), f"{assignment}/{meta['grade_id']} should start by saying what it checks"
                assert "checkers." in cell.source


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_gets_full_marks(graded: Round, assignment: str):
    """Handed in as a student's, does the instructor's notebook get every point?"""
    assert graded.scores[(assignment, "solution")] == graded.points[assignment]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_release_gets_zero_and_says_not_implemented(graded: Round, assignment: str):
    """Does an untouched notebook score 0 everywhere, without needing hand grading, and say "not implemented"?"""
    assert graded.scores[(assignment, "untouched")] == graded.expected(assignment, "untouched")
    feedback = graded.feedback(assignment, "untouched")
    autograded = set(graded.points[assignment]) - graded.manual[assignment]
    assert feedback.count(NOT_IMPLEMENTED) >= len(autograded), \
        f"every autograded part of an untouched {assignment} should say '{NOT_IMPLEMENTED}'"


def _fixture_ids():
    return [f"{a}/{fx.student}" for a in ASSIGNMENTS for fx in make_submissions.read_fixtures(a)]


@pytest.mark.parametrize("key", _fixture_ids())
def test_wrong_submission_gets_partial_credit_and_named_mistake(graded: Round, key: str):
    """Does a realistic mistake cost exactly the parts it breaks, and does the feedback name it?"""
    assignment, student = key.split("/")
    fx = graded.fixtures[(assignment, student)]
    got = graded.scores[(assignment, student)]
    assert got == graded.expected(assignment, student), fx.description
    assert 0 < sum(got.values()) < sum(graded.points[assignment].values()), "a partial score"
    assert fx.feedback and fx.feedback in graded.feedback(assignment, student)


def test_there_are_three_named_mistakes_per_assignment():
    """Is every assignment tried with at least three different realistic mistakes?"""
    for assignment in ASSIGNMENTS:
        named = [fx for fx in make_submissions.read_fixtures(assignment) if "is not defined" not in fx.feedback]
        assert len(named) >= 3, assignment


def test_a_cell_that_raises_does_not_stop_the_grading(graded: Round):
    """When one answer cell raises, is the rest of the notebook still run and graded?"""
    assignment, student, broken = "01_rnn", "test_line_left_in", "rnn_layer"
    nb = nbformat.read(graded.course / "autograded" / student / assignment / "rnn.ipynb", as_version=4)
    cell = next(c for c in nb.cells if _nbgrader_meta(c).get("grade_id") == broken)
    assert any(o.output_type == "error" for o in cell.outputs), "the broken cell should have raised"
    scores = graded.scores[(assignment, student)]       # the parts after it were run and passed
    assert scores["rnn_layer_check"] == 0
    assert scores["state_gradient_norms_check"] == scores["clip_grad_norm_check"] == 2


def test_feedback_is_written_for_every_submission(graded: Round):
    for assignment in ASSIGNMENTS:
        for student in _students(assignment):
            assert "Score:" in graded.feedback(assignment, student)


def test_exported_csv_holds_the_right_totals(graded: Round):
    """Does grades.csv give every student the sum of the points they deserve, for every assignment?"""
    rows = {(r["assignment"], r["student_id"]): r for r in graded.csv_rows}
    students = {s for a in ASSIGNMENTS for s in _students(a)}
    assert set(rows) == {(a, s) for a in ASSIGNMENTS for s in students}
    for (assignment, student), row in rows.items():
        max_score = sum(graded.points[assignment].values())
        assert float(row["max_score"]) == max_score
        submitted = student in _students(assignment)
        want = sum(graded.expected(assignment, student).values()) if submitted else 0.0
        assert float(row["score"]) == pytest.approx(want), (assignment, student)
