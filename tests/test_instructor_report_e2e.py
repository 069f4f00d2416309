"""End to end: a practice class through the real ``nbgrader autograde``, then the class report and the grade exports.

A temporary copy of the course (the repository's ``nbgrader_config.py`` with the short time limits of
``test_grading_nbgrader_e2e.py``, and ``solutions/02_lstm``) goes through ``nbgrader generate_assignment``;
the class is one student per file in ``tests/fixtures/class_report/02_lstm/`` (each file gives some
answer cells; the others stay as released) plus the untouched release: independent correct
solutions, two named mistakes, a wrong answer no catalogue entry fits, a crash, a hang, a forbidden
``nn.LSTMCell``, a renamed and reformatted copy of a classmate, and a renamed copy of the answer key.
(eve also hands in an outcomes file saying she passed everything.) After ONE ``nbgrader autograde
02_lstm`` and ``generate_feedback``, ``python -m course_lib.instructor.report 02_lstm`` runs
from the course root, and ``nbgrader export`` with the Canvas and Moodle plugins. Three of the students
are graded again by the parallel command into a PostgreSQL gradebook, and the report read from there.

Do the report's counts equal the injected ones? Are the copies found (the renamed one included) and
the independent correct solutions not? Is the page self-contained, with student code escaped? Do the
exported files have the columns the platforms read, and the gradebook's scores?
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from casefiles import read_case
from course_lib.checkers import mistakes
from test_grading_dask_e2e import postgres_url, run_parallel  # noqa: F401 - a fixture, used by name
from test_grading_nbgrader_e2e import TEST_LIMITS, nbgrader

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "02_lstm"
FIXTURES = ROOT / "tests" / "fixtures" / "class_report" / ASSIGNMENT
COURSE_ID = "rnn-to-lstm"
PARTS = ("lstm_cell_check", "lstm_layer_check", "lstm_backward_check")

# What each student was built to get, part by part (see the header of each fixture file).
INJECTED = {
    "ada": ("passed", "passed", "check_failed"),
    "bo": ("passed", "passed", "check_failed"),
    "cy": ("passed", "passed", "check_failed"),
    "dee": ("passed", "passed", "check_failed"),
    "eve": ("mistake", "mistake", "check_failed"),
    "fay": ("passed", "mistake", "check_failed"),
    "gus": ("crash", "crash", "check_failed"),
    "hal": ("passed", "timeout", "check_failed"),
    "ivy": ("policy", "policy", "check_failed"),
    "jo": ("check_failed", "check_failed", "check_failed"),
    "kim": ("passed", "passed", "passed"),
    "untouched": ("check_failed", "check_failed", "check_failed"),
}
SWAP_IF = next(m.label for m in mistakes.LSTM_CELL if m.fn.keywords == {"order": "figo"})
C_FROM_C0 = next(m.label for m in mistakes.LSTM_LAYER
                 if m.fn.keywords.get("carry_c") == "init" and "carry_h" not in m.fn.keywords)
NAMED = {("lstm_cell_check", SWAP_IF): ["eve"], ("lstm_layer_check", SWAP_IF): ["eve"],
         ("lstm_layer_check", C_FROM_C0): ["fay"]}
COPIED = {("ada", "dee")}
INDEPENDENT = ["ada", "bo", "cy", "eve", "fay", "gus", "hal", "ivy", "jo"]   # written independently of each other
KEY_COPY = {"kim"}


def _env(course: Path) -> dict:
    bin_dir = Path(sys.executable).parent
    return dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", KERAS_BACKEND="torch",
                MPLBACKEND="Agg", KERAS_HOME=str(course / ".keras"))


def run(course: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=course, env=_env(course), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    course = tmp_path_factory.mktemp("class") / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text() + TEST_LIMITS)
    shutil.copytree(ROOT / "solutions" / ASSIGNMENT, course / "solutions" / ASSIGNMENT)
    nbgrader(course, "generate_assignment", ASSIGNMENT)
    (release,) = (course / "exercises" / ASSIGNMENT).glob("*.ipynb")
    for student in INJECTED:
        nb = nbformat.read(release, as_version=4)
        given = read_case(FIXTURES / f"{student}.py").replace if student != "untouched" else {}
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in given:
                cell.source = given.pop(gid)
        assert not given, f"{student}: no answer cell {sorted(given)}"
        out = course / "submitted" / student / ASSIGNMENT / release.name
        out.parent.mkdir(parents=True)
        nbformat.write(nb, out)
    forged = {"format": 1, "notebook": "lstm", "parts": [{"part": p, "outcome": "passed"} for p in PARTS]}
    (course / "submitted" / "eve" / ASSIGNMENT / "lstm.outcomes.json").write_text(json.dumps(forged))
    nbgrader(course, "autograde", ASSIGNMENT)
    nbgrader(course, "generate_feedback", ASSIGNMENT)
    done = run(course, sys.executable, "-m", "course_lib.instructor.report", ASSIGNMENT)
    assert done.returncode == 0, done.stderr[-4000:]
    return course


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_outcome_counts_equal_the_injected_ones(course):
    rows = {r["part"]: r for r in _csv(course / "reports" / ASSIGNMENT / "parts.csv")}
    for k, part in enumerate(PARTS):
        expected = {}
        for outcomes in INJECTED.values():
            expected[outcomes[k]] = expected.get(outcomes[k], 0) + 1
        got = {o: int(rows[part][o]) for o in ("passed", "mistake", "check_failed", "not_defined", "policy",
                                                "timeout", "crash") if int(rows[part][o])}
        assert got == expected, part
    # Left as released: the untouched notebook everywhere, jo's layer, everyone's backward but kim's.
    assert {p: int(rows[p]["unattempted"]) for p in PARTS} == {
        "lstm_cell_check": 1, "lstm_layer_check": 2, "lstm_backward_check": len(INJECTED) - 1}
    # The "Try it" cell under part 2 runs lstm_layer at the top level: gus's crashes, hal's hangs; both are
    # stopped and skipped, which part 3 (below that cell) reports.
    assert {p: int(rows[p]["cells_stopped"]) for p in PARTS} == {
        "lstm_cell_check": 0, "lstm_layer_check": 0, "lstm_backward_check": 2}
    # The pass rate agrees with the gradebook's scores.
    assert float(rows["lstm_cell_check"]["pass_rate"]) == pytest.approx(7 / 12, abs=1e-3)


def test_named_mistakes_are_counted_from_the_catalogue_with_an_example(course):
    rows = _csv(course / "reports" / ASSIGNMENT / "mistakes.csv")
    assert {(r["part"], r["mistake"]): int(r["students"]) for r in rows} == {k: len(v) for k, v in NAMED.items()}
    assert all(r["example"] in NAMED[(r["part"], r["mistake"])] for r in rows)
    page = (course / "reports" / ASSIGNMENT / "report.html").read_text()
    links = [h for h in re.findall(r'href="([^"]+)"', page) if not h.startswith("#")]   # "#": inside an SVG
    assert links
    for href in links:                                               # every example link opens a graded notebook
        assert (course / "reports" / ASSIGNMENT / href).resolve().is_file(), href


def test_outcome_files_are_the_graders_and_stay_out_of_the_feedback(course):
    """eve's forged file was neither copied nor believed; students are not sent the outcome files."""
    assert json.loads((course / "autograded" / "eve" / ASSIGNMENT / "lstm.outcomes.json").read_text())[
        "parts"][0]["outcome"] == "mistake"
    assert list((course / "feedback").rglob("*.html")) and not list((course / "feedback").rglob("*.outcomes.json"))
    page = (course / "reports" / ASSIGNMENT / "report.html").read_text()
    assert 'href="../../feedback/eve/02_lstm/lstm.html"' in page        # the example of eve's mistake


def test_copies_are_flagged_and_independent_solutions_are_not(course):
    rows = _csv(course / "reports" / ASSIGNMENT / "similarity.csv")
    flagged = {(r["a"], r["b"]) for r in rows if r["kind"] == "student" and r["flagged"] == "True"}
    assert flagged == COPIED
    key = {r["a"] for r in rows if r["kind"] == "answer key" and r["flagged"] == "True"}
    assert key == KEY_COPY
    pairs = {(r["a"], r["b"]): float(r["similarity"]) for r in rows if r["kind"] == "student"}
    independent = [pairs[(a, b)] for a in INDEPENDENT for b in INDEPENDENT if a < b]
    # The calibration the README states: independent work at most 0.31 alike (0.12 to the answer key),
    # the renamed copy at least 0.85, the renamed answer key 1.0.
    assert max(independent) <= 0.31 and min(pairs[p] for p in COPIED) >= 0.85
    to_key = {r["a"]: float(r["similarity"]) for r in rows if r["kind"] == "answer key"}
    assert max(to_key[s] for s in INDEPENDENT) <= 0.12 and to_key["kim"] == 1.0


def test_page_is_self_contained_and_escapes_student_code(course):
    page = (course / "reports" / ASSIGNMENT / "report.html").read_text()
    assert "<svg" in page and "<script" not in page.lower() and "<link" not in page.lower()
    assert not re.search(r'\b(src|href)="(https?:)?//', page)
    # dee's copied code carries a comment with markup; it shows as text in the side-by-side view.
    assert "&lt;/pre&gt;&lt;script&gt;" in page


def _mapping(course: Path, students: list[str]) -> Path:
    path = course / "lms_students.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["nbgrader_id", "Student", "ID", "SIS User ID", "SIS Login ID", "Section", "ID number",
                    "Email address"])
        for k, s in enumerate(students):
            w.writerow([s, f"Student, {s.title()}", 1000 + k, f"S{k:04d}", f"{s}@uni.example", "LSTM 101",
                        f"S{k:04d}", f"{s}@uni.example"])
    return path


def _gradebook_scores(course: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb:
        return {s.student.id: max(0.0, s.score - s.late_submission_penalty)
                for s in gb.find_assignment(ASSIGNMENT).submissions}


def test_canvas_and_moodle_files_parse_with_the_platforms_columns(course):
    students = sorted(INJECTED) + ["absent"]
    _mapping(course, students)
    scores = _gradebook_scores(course)
    nbgrader(course, "export", "--exporter=course_lib.instructor.lms.CanvasExportPlugin", "--to=canvas.csv")
    with open(course / "canvas.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", ASSIGNMENT]
    assert rows[1][0] == "Points Possible" and float(rows[1][-1]) == 9.0
    canvas = {r[2]: float(r[-1]) for r in rows[2:]}
    assert canvas == {f"S{k:04d}": scores.get(s, 0.0) for k, s in enumerate(students)}
    nbgrader(course, "export", "--exporter=course_lib.instructor.lms.MoodleExportPlugin", "--to=moodle.csv")
    with open(course / "moodle.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["ID number", "Email address", ASSIGNMENT]
    assert {r["Email address"]: float(r[ASSIGNMENT]) for r in rows} == {
        f"{s}@uni.example": scores.get(s, 0.0) for s in students}


def test_export_with_an_unmapped_student_writes_nothing(course):
    _mapping(course, sorted(INJECTED)[1:])                  # ada is missing
    done = nbgrader(course, "export", "--exporter=course_lib.instructor.lms.MoodleExportPlugin",
                    "--to=moodle_missing.csv", check=False)
    assert done.returncode != 0 and "missing: ada" in done.stderr and "Traceback" not in done.stderr
    assert not (course / "moodle_missing.csv").exists()



def test_report_of_a_postgresql_gradebook_graded_in_parallel(course, postgres_url, tmp_path):
    """The outcome files travel back from the Dask workers; the report reads the gradebook at --db-url."""
    twin = tmp_path / "course"
    shutil.copytree(course, twin, ignore=shutil.ignore_patterns("autograded", "reports", "gradebook.db", "*.csv"))
    nbgrader(twin, "generate_assignment", ASSIGNMENT, "--force", f"--db={postgres_url}")
    students = ["ada", "dee", "eve"]
    done = run_parallel(twin, "--db-url", postgres_url, *(f"--student={s}" for s in students))
    assert "3 graded, 0 failed" in done.stdout, done.stdout + done.stderr[-3000:]
    report = run(twin, sys.executable, "-m", "course_lib.instructor.report", ASSIGNMENT, "--db-url", postgres_url)
    assert report.returncode == 0, report.stderr[-3000:]
    assert not (twin / "gradebook.db").exists()
    out = twin / "reports" / ASSIGNMENT
    rows = {r["part"]: r for r in _csv(out / "parts.csv")}
    assert [(int(rows[p]["passed"]), int(rows[p]["mistake"])) for p in PARTS] == [(2, 1), (2, 1), (0, 0)]
    assert {(r["part"], r["mistake"]) for r in _csv(out / "mistakes.csv")} == {
        ("lstm_cell_check", SWAP_IF), ("lstm_layer_check", SWAP_IF)}
    assert {(r["a"], r["b"]) for r in _csv(out / "similarity.csv") if r["flagged"] == "True"} == COPIED
