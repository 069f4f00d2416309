"""End to end, whole nbgrader rounds: trusted grading through the real ``nbgrader autograde``: can a
submission fake, hide or lose a grade?

A temporary copy of the course (the repository's ``nbgrader_config.py``, with shorter time limits
appended so that the hanging cases end quickly, and ``solutions/``) goes through ``nbgrader
generate_assignment`` and then ONE ``nbgrader autograde 02_lstm`` for a class of adversarial students,
one per file in ``tests/adversarial/`` (see its README), plus the instructor's solution (full marks)
and the untouched release (zero). A second class, for ``01_rnn`` (its tricks, solutions and untouched
releases), is graded by a run that is killed half-way and then run again. The scores are read back
from the gradebook.

Does every trick get 0 for the part it attacked and leave the student's other parts and the other
students alone? Does the run finish, leave no process behind, leak nothing and reach nothing on
127.0.0.1? And does a run killed half-way, run again, end with every submission graded once?
"""
from __future__ import annotations

import copy
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from casefiles import Case, read_case

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
ADVERSARIAL = ROOT / "tests" / "adversarial"
BIN = Path(sys.executable).parent
COURSE_ID = "rnn-to-lstm"
TEST_LIMITS = """
# --- tests/test_grading_nbgrader_e2e.py: shorter limits, so that the hanging submissions end quickly
c.TrustedExecute.call_timeout = 5
c.TrustedExecute.cell_timeout = 6
c.TrustedExecute.file_bytes = 16 * 2**20
"""
SOLUTION_MARKERS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


# ------------------------------------------------------------------------------------------ fixtures files

ISOLATED = os.geteuid() == 0            # the sandbox switches user and namespaces only when run as root
CASES = [c for c in map(read_case, sorted(ADVERSARIAL.glob("*.py"))) if ISOLATED or not c.needs_isolation]


# ------------------------------------------------------------------------------------------ building a class

def nbgrader(course: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([str(BIN / "nbgrader"), *args], cwd=course, env=_env(course), capture_output=True,
                          text=True, timeout=2400)
    if check:
        assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stderr[-6000:]}"
    return done


def _env(course: Path) -> dict:
    env = dict(os.environ)
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", KERAS_BACKEND="torch", MPLBACKEND="Agg",
               KERAS_HOME=str(course / ".keras"))
    return env


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _notebook(course: Path, step: str, assignment: str) -> Path:
    (path,) = (course / step / assignment).glob("*.ipynb")
    return path


def submission(course: Path, case: Case, tokens: dict[str, str]) -> nbformat.NotebookNode:
    """The release notebook with every answer filled in from the solution, then the case's changes."""
    solution = nbformat.read(_notebook(course, "solutions", case.assignment), as_version=4)
    nb = nbformat.read(_notebook(course, "exercises", case.assignment), as_version=4)
    answers = {_meta(c)["grade_id"]: c.source for c in solution.cells if _meta(c).get("solution")}
    fill = lambda s: re.sub(r"@@(\w+)@@", lambda m: tokens[m.group(1)], s)   # noqa: E731
    for cell in nb.cells:
        gid = _meta(cell).get("grade_id")
        if _meta(cell).get("solution"):
            source = case.replace.get(gid, answers[gid])
            cell.source = "\n".join(l for l in source.splitlines() if not SOLUTION_MARKERS.match(l))
            cell.source = fill(cell.source)
    assert set(case.replace) <= set(answers), f"{case.student}: no answer cell {set(case.replace) - set(answers)}"
    for gid, source in case.after.items():
        index = next(i for i, c in enumerate(nb.cells) if _meta(c).get("grade_id") == gid)
        nb.cells.insert(index + 1, nbformat.v4.new_code_cell(fill(source)))
    for kind, arg in case.json_edits:
        JSON_EDITS[kind](nb, arg)
    return nb


def _cell(nb, gid):
    return next(c for c in nb.cells if _meta(c).get("grade_id") == gid)


def _points(nb, arg):
    gid, _, points = arg.partition("=")
    _cell(nb, gid).metadata.nbgrader["points"] = float(points)


def _rename(nb, arg):
    gid, _, new = arg.partition("=")
    _cell(nb, gid).metadata.nbgrader["grade_id"] = new


def _delete(nb, gid):
    nb.cells.remove(_cell(nb, gid))


def _duplicate(nb, gid):
    cell = _cell(nb, gid)
    twin = copy.deepcopy(cell)
    twin["id"] = "duplicated"
    nb.cells.insert(nb.cells.index(cell) + 1, twin)


def _forge(nb, arg):
    gid, _, points = arg.partition("=")
    cell = nbformat.v4.new_code_cell("print('bonus')")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": float(points),
                                 "grade_id": gid, "schema_version": 3}
    nb.cells.append(cell)


def _flip(nb, gid):
    _cell(nb, gid).metadata.nbgrader.update(grade=False, solution=True, locked=False)


def _kernelspec(nb, name):
    nb.metadata["kernelspec"] = {"name": name, "display_name": name, "language": "python"}


JSON_EDITS = {"points": _points, "rename": _rename, "delete": _delete, "duplicate": _duplicate, "forge": _forge,
              "flip": _flip, "kernelspec": _kernelspec}


def hard_coded_table() -> str:
    """The answers of the visible and the hidden lstm_cell checks, keyed by the sum of the input."""
    import torch
    from course_lib.checkers import cells
    torch.set_num_threads(1)
    table = {}
    for kwargs in ({}, {"seed": 9, "batch": 2, "input_size": 3, "hidden": 6}):
        _, cases = cells.build("lstm", **kwargs)
        for case in cases:
            table[round(float(case.args["input"].sum()), 4)] = tuple(t.float().tolist() for t in case.expected)
    return repr(table)


def write(course: Path, student: str, assignment: str, nb) -> None:
    out = course / "submitted" / student / assignment / _notebook(course, "solutions", assignment).name
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)


def read_scores(course: Path, assignment: str) -> dict[str, dict[str, float | None]]:
    from nbgrader.api import Gradebook
    scores = {}
    name = _notebook(course, "solutions", assignment).stem
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        for sub in gb.find_assignment(assignment).submissions:
            nb = gb.find_submission_notebook(name, assignment, sub.student.id)
            scores[sub.student.id] = {g.name: (None if g.score is None else float(g.score)) for g in nb.grades}
    return scores


def points(course: Path, assignment: str) -> dict[str, float]:
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        nb = gb.find_notebook(_notebook(course, "solutions", assignment).stem, assignment)
        return {c.name: float(c.max_score) for c in nb.grade_cells}


def _stat(pid: str) -> tuple[str, int] | None:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return cmd, int(stat[stat.rfind(")") + 2:].split()[1])


def orphaned_sandbox_processes() -> list[str]:
    """Sandbox processes (zygotes, workers) whose grader is gone: their parent is neither nbgrader nor pytest.

    Other people's grading runs on this machine have a live nbgrader parent and are not counted.
    """
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        info = _stat(pid)
        if info is None or "course_lib.grading.sandboxed.zygote" not in info[0]:
            continue
        parent = _stat(str(info[1])) if info[1] > 1 else None
        if parent is None or not any(word in parent[0] for word in ("nbgrader", "pytest", "grading.sandboxed.zygote")):
            out.append(f"{pid}: {info[0]}")
    return out


def orphaned_nobody_processes() -> set[int]:
    """Processes of the sandboxes' users that lost their parent (a fork bomb's children would end up here)."""
    from course_lib.grading.limits import Limits
    users = range(Limits.uid_base, Limits.uid_base + Limits.uid_count)
    out = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid in users and (_stat(pid) or ("", 0))[1] == 1:
                out.add(int(pid))
        except OSError:
            pass
    return out


@dataclass
class Round:
    course: Path
    scores: dict
    points: dict
    connections: list
    outputs: dict             # student -> {grade_id: text of the cell's outputs}, and "*" -> all outputs
    new_nobody: set           # orphaned processes of the sandbox user that appeared during the run


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    course = tmp_path_factory.mktemp("trusted_course")
    (course / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text() + TEST_LIMITS)
    shutil.copytree(ROOT / "solutions", course / "solutions", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for assignment in ("01_rnn", "02_lstm"):
        nbgrader(course, "generate_assignment", assignment, "--force")
    return course


def _outputs_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts += [out.get("text", ""), out.get("evalue", ""), "\n".join(out.get("traceback", []))]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def graded(course: Path) -> Round:
    assignment = "02_lstm"
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    connections, stop = [], threading.Event()

    def listen():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                connections.append(conn.recv(100))
                conn.close()
            except OSError:
                pass

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    tokens = {"PORT": str(server.getsockname()[1]), "COURSE": str(course), "TABLE": hard_coded_table()}
    solution = nbformat.read(_notebook(course, "solutions", assignment), as_version=4)
    write(course, "solution", assignment, solution)
    write(course, "untouched", assignment, nbformat.read(_notebook(course, "exercises", assignment), as_version=4))
    for case in CASES:
        if case.assignment == assignment:
            write(course, case.student, assignment, submission(course, case, tokens))
    before = orphaned_nobody_processes()
    try:
        nbgrader(course, "autograde", assignment)
    finally:
        stop.set()
        thread.join()
        server.close()
    time.sleep(0.5)
    outputs: dict = {"*": ""}
    for path in (course / "autograded").glob(f"*/{assignment}/*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        student = path.parent.parent.name
        outputs[student] = {_meta(c).get("grade_id"): _outputs_text(c) for c in nb.cells if _meta(c).get("grade")}
        outputs["*"] += "\n".join(_outputs_text(c) for c in nb.cells if c.cell_type == "code")
    return Round(course, read_scores(course, assignment), points(course, assignment), connections, outputs,
                 orphaned_nobody_processes() - before)


# ------------------------------------------------------------------------------------------ the tests

def test_the_solution_gets_full_marks_and_the_release_zero(graded: Round):
    assert graded.scores["solution"] == graded.points
    assert graded.scores["untouched"] == {gid: 0.0 for gid in graded.points}


@pytest.mark.parametrize("case", [c for c in CASES if c.assignment == "02_lstm"], ids=lambda c: c.student)
def test_each_trick_scores_zero_for_what_it_attacked_and_nothing_else(graded: Round, case: Case):
    expected = {gid: case.expect.get(gid, full) for gid, full in graded.points.items()}
    assert graded.scores[case.student] == expected, case.description
    if case.feedback:
        attacked = next(iter(case.expect))
        assert case.feedback in graded.outputs[case.student][attacked], graded.outputs[case.student][attacked]


@pytest.mark.skipif(not ISOLATED, reason="hiding the course's files needs root (or a container)")
def test_nothing_secret_reaches_any_output(graded: Round):
    text = graded.outputs["*"]
    for secret in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "SQLite format", "schema_version", "FORGED_BY_STUDENT"):
        assert secret not in text


@pytest.mark.skipif(not ISOLATED, reason="network and file isolation need root (or a container)")
def test_nothing_reached_the_test_port_and_no_file_was_forged(graded: Round):
    assert graded.connections == []
    assert not (graded.course / "FORGED_BY_STUDENT").exists()
    assert not list(graded.course.rglob("results.json"))
    assert b"FORGED_BY_STUDENT" not in (graded.course / "gradebook.db").read_bytes()


def test_the_run_leaves_no_process_behind(graded: Round):
    assert orphaned_sandbox_processes() == []
    assert graded.new_nobody == set()


def test_the_log_records_every_part_with_its_secret_seed(graded: Round):
    log = (graded.course / "autograded" / "trusted_grading.log").read_text()
    for student in graded.scores:
        assert f"{student}/02_lstm/lstm: 3 graded parts" in log
    parts = [line for line in log.splitlines() if re.search(r"_check: (pass|FAIL|0 \(policy\))", line)]
    assert len(parts) == 3 * len(graded.scores)
    assert all("(policy)" in line or re.search(r"secret seed \d+", line) for line in parts)


def test_a_forbidden_shortcut_is_explained_to_the_instructor_in_the_gradebook(graded: Round):
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{graded.course / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        comment = gb.find_comment("lstm_cell", "lstm", "02_lstm", "uses_forbidden_lstmcell").comment
        clean = gb.find_comment("lstm_cell", "lstm", "02_lstm", "solution").comment
    assert comment.startswith("[trusted grading]") and "nn.LSTMCell" in comment
    assert not (clean or "").startswith("[trusted grading]")


@pytest.mark.parametrize("student, reason", [("dynamic_name_lstm_cell", "called `aten::lstm_cell`"),
                                             ("checkers_oracle", "the internals of `course_lib.checkers`")])
def test_a_shortcut_caught_in_the_sandbox_or_by_the_scan_is_explained_in_the_gradebook(graded: Round, student, reason):
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{graded.course / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        comment = gb.find_comment("lstm_cell", "lstm", "02_lstm", student).comment
    assert comment.startswith("[trusted grading]") and reason in comment, comment


# ------------------------------------------------------------------------------------------ a killed run

def test_a_run_killed_half_way_and_run_again_grades_everyone_once(course: Path):
    """01_rnn: solutions, untouched releases and the 01_rnn tricks; the first run is killed (SIGKILL to
    nbgrader's whole process group) after three submissions, then plain `nbgrader autograde` again."""
    assignment = "01_rnn"
    solution = nbformat.read(_notebook(course, "solutions", assignment), as_version=4)
    release = nbformat.read(_notebook(course, "exercises", assignment), as_version=4)
    tokens = {"PORT": "9", "COURSE": str(course), "TABLE": "{}"}
    students = {f"s{k}": (solution if k % 2 == 0 else release) for k in range(5)}
    cases = {case.student: case for case in CASES if case.assignment == assignment}
    for case in cases.values():
        students[case.student] = submission(course, case, tokens)
    for student, nb in students.items():
        write(course, student, assignment, nb)
    log = course / "killed_run.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([str(BIN / "nbgrader"), "autograde", assignment], cwd=course, env=_env(course),
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    deadline = time.monotonic() + 300
    graded_so_far = lambda: len(re.findall(r"trusted grading: \S+/01_rnn/rnn: ", log.read_text()))   # noqa: E731
    while time.monotonic() < deadline and graded_so_far() < 3:
        time.sleep(0.05)
    time.sleep(0.3)                                   # inside the fourth submission's grading, most likely
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)
    assert orphaned_sandbox_processes() == [], "the sandbox dies with the grader"
    finished_before = {p.parent.name for p in (course / "autograded").glob(f"*/{assignment}")}
    assert 0 < len(finished_before) < len(students)

    nbgrader(course, "autograde", assignment)        # plain re-run, no --force
    full = points(course, assignment)
    scores = read_scores(course, assignment)
    assert set(scores) == set(students)
    for student, nb in students.items():
        if student in cases:
            want = {gid: cases[student].expect.get(gid, pts) for gid, pts in full.items()}
        else:
            want = {gid: (pts if nb is solution else 0.0) for gid, pts in full.items()}
        assert scores[student] == want, student
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        for student in students:
            grades = gb.find_submission_notebook("rnn", assignment, student).grades
            assert sorted(g.name for g in grades) == sorted(full), "one grade per graded cell"
    assert not list((course / "autograded").glob(f"*/{assignment}.grading"))
    for student, case in cases.items():
        if case.feedback:
            nb = nbformat.read(course / "autograded" / student / assignment / "rnn.ipynb", as_version=4)
            attacked = next(c for c in nb.cells if _meta(c).get("grade_id") == next(iter(case.expect)))
            assert case.feedback in _outputs_text(attacked), student
