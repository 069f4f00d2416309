"""End to end, whole rounds on Dask: grading in parallel lands the same gradebook as plain sequential
``nbgrader autograde``.

One temporary copy of the course (the repository's ``nbgrader_config.py`` with the short time limits of
``test_grading_nbgrader_e2e.py``, and ``solutions/``) goes through ``nbgrader generate_assignment 02_lstm``,
gets a class of submissions (the solution, the untouched release, a realistic mistake, two
adversarial tricks, a crashing cell and a notebook that is not JSON), and is then copied: one copy is
graded with ONE plain ``nbgrader autograde 02_lstm``, the other with the parallel command (two
Dask worker processes on a LocalCluster). The two gradebooks must agree cell by cell: every score,
every "needs manual grade" flag, every comment, for every student. The same command against a
running Dask cluster (a ``dask scheduler`` and a ``dask worker`` started by the test), and into a
PostgreSQL gradebook (a real server, started by the test), must end with the same grades too.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from casefiles import Case, read_case
from test_grading_nbgrader_e2e import COURSE_ID, TEST_LIMITS, _notebook, nbgrader, submission, write

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "02_lstm"
BIN = Path(sys.executable).parent


def _class_of(course: Path) -> dict[str, str]:
    """Write the submissions; return student -> what it is."""
    tokens = {"PORT": "9", "COURSE": str(course), "TABLE": "{}"}
    kinds = {}
    for student, case in [
        ("solution", Case("solution", ASSIGNMENT, "", {}, "", [], False)),
        ("mistake", read_case(ROOT / "tests/fixtures/submissions/02_lstm/cell_state_restarts.py")),
        ("patches_allclose", read_case(ROOT / "tests/adversarial/patches_allclose.py")),
        ("os_exit", read_case(ROOT / "tests/adversarial/os_exit_top_level.py")),
    ]:
        case.assignment = ASSIGNMENT
        write(course, student, ASSIGNMENT, submission(course, case, tokens))
        kinds[student] = student
    untouched = nbformat.read(_notebook(course, "exercises", ASSIGNMENT), as_version=4)
    write(course, "untouched", ASSIGNMENT, untouched)
    crashing = nbformat.read(_notebook(course, "exercises", ASSIGNMENT), as_version=4)
    crashing.cells.insert(2, nbformat.v4.new_code_cell("import ctypes\nctypes.string_at(0)   # segfault"))
    write(course, "segfault", ASSIGNMENT, crashing)
    broken = course / "submitted" / "not_json" / ASSIGNMENT / _notebook(course, "exercises", ASSIGNMENT).name
    broken.parent.mkdir(parents=True)
    broken.write_text("{ this is not a notebook")
    kinds.update(untouched="untouched", segfault="segfault", not_json="not_json")
    return kinds


@pytest.fixture(scope="module")
def courses(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("parallel")
    course = base / "sequential"
    course.mkdir()
    (course / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text() + TEST_LIMITS)
    shutil.copytree(ROOT / "solutions" / ASSIGNMENT, course / "solutions" / ASSIGNMENT)
    nbgrader(course, "generate_assignment", ASSIGNMENT)
    _class_of(course)
    twin = base / "parallel"
    shutil.copytree(course, twin)
    shutil.copytree(course, base / "postgres")
    shutil.copytree(course, base / "cluster")
    (base / "postgres" / "gradebook.db").unlink()            # its gradebook will be a PostgreSQL database
    nbgrader(course, "autograde", ASSIGNMENT, check=False)     # not_json fails, as it should
    return course, twin


def gradebook_dump(db_url: str, assignment: str) -> dict:
    """Every value autograding writes, per (student, notebook, cell)."""
    from nbgrader.api import Gradebook
    out = {}
    with Gradebook(db_url, COURSE_ID) as gb:
        for sub in gb.find_assignment(assignment).submissions:
            for nb in sub.notebooks:
                out[(sub.student.id, nb.name, "late_penalty")] = nb.late_submission_penalty
                for g in nb.grades:
                    out[(sub.student.id, nb.name, "grade", g.name)] = (g.auto_score, g.manual_score,
                                                                      g.needs_manual_grade)
                for c in nb.comments:
                    out[(sub.student.id, nb.name, "comment", c.name)] = (c.auto_comment, c.manual_comment)
    return out


def _env(course: Path) -> dict:
    return dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", KERAS_BACKEND="torch",
                MPLBACKEND="Agg", KERAS_HOME=str(course / ".keras"))


def run_parallel(course: Path, *extra: str, tmpdir: Path | None = None) -> subprocess.CompletedProcess:
    env = _env(course) if tmpdir is None else dict(_env(course), TMPDIR=str(tmpdir))
    return subprocess.run([sys.executable, "-m", "course_lib.grading.cli", ASSIGNMENT, "--workers", "2", *extra],
                          cwd=course, env=env, capture_output=True, text=True, timeout=600)


def test_parallel_gradebook_agrees_with_sequential_cell_by_cell(courses, tmp_path):
    sequential, parallel = courses
    done = run_parallel(parallel, tmpdir=tmp_path)
    assert done.returncode == 1, done.stderr[-4000:]        # not_json failed, so the command says so
    assert "6 graded, 1 failed" in done.stdout, done.stdout
    assert "FAILED not_json" in done.stdout
    assert "failed=1" in done.stderr and "left=0" in done.stderr, done.stderr[-2000:]    # the progress bar
    seq = gradebook_dump(f"sqlite:///{sequential / 'gradebook.db'}", ASSIGNMENT)
    par = gradebook_dump(f"sqlite:///{parallel / 'gradebook.db'}", ASSIGNMENT)
    assert set(par) == set(seq)
    assert {k: v for k, v in par.items() if seq[k] != v} == {}
    # The grades are the right ones, not merely the same ones.
    scores = {(k[0], k[3]): v[0] for k, v in seq.items() if k[2] == "grade"}
    assert scores[("solution", "lstm_cell_check")] > 0 and scores[("solution", "lstm_layer_check")] > 0
    assert scores[("untouched", "lstm_cell_check")] == 0
    assert scores[("mistake", "lstm_layer_check")] == 0 and scores[("mistake", "lstm_cell_check")] > 0
    assert scores[("patches_allclose", "lstm_cell_check")] == 0
    assert scores[("os_exit", "lstm_cell_check")] == 0
    # The graded notebooks are written where nbgrader writes them, for the same students.
    graded = lambda c: sorted(p.parent.parent.name for p in (c / "autograded").glob(f"*/{ASSIGNMENT}/*.ipynb"))  # noqa: E731
    assert graded(parallel) == graded(sequential) and "not_json" not in graded(parallel)
    # The workers' scratch courses and sandboxes are gone once the command has returned.
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(("grade-", "trusted-grading-"))]
    assert left == []


def test_bad_assignment_is_one_sentence(courses):
    _, parallel = courses
    done = run_parallel(parallel.parent / "sequential", "--student", "nobody_here")
    assert done.returncode == 2 and "expected submissions in" in done.stderr and "Traceback" not in done.stderr
    from course_lib.grading.parallel import grade_assignment
    with pytest.raises(ValueError, match="expected an assignment name"):
        grade_assignment("", root=parallel)


# ------------------------------------------------------------------------------------------ a Dask cluster

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dask_scheduler(courses):
    """A ``dask scheduler`` and one ``dask worker`` (with the course's preload), as an instructor starts them."""
    from dask.distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = Path(tempfile.mkdtemp(prefix="dask-cluster-"))
    (logs / "tmp").mkdir()
    env = dict(_env(courses[0]), TMPDIR=str(logs / "tmp"))     # where the worker's sandbox and scratch live
    commands = {"scheduler": ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                "worker": ["worker", address, "--nthreads", "1", "--no-dashboard",
                           "--preload", "course_lib.grading.worker_preload"]}
    procs = []
    try:
        for name, args in commands.items():
            with open(logs / f"{name}.log", "w") as log:
                procs.append(subprocess.Popen([str(BIN / "dask"), *args], env=env, stdout=subprocess.DEVNULL,
                                              stderr=log, start_new_session=True))
        with Client(address, timeout=120) as client:
            client.wait_for_workers(1, timeout=300)      # the worker imports torch and nbgrader first
        yield address
        procs[1].terminate()            # the worker first, as an administrator stops it: it closes cleanly
        procs[1].wait(timeout=60)
        left = [p.name for p in (logs / "tmp").iterdir() if p.name.startswith(("grade-", "trusted-grading-"))]
        assert left == [], "a stopped dask worker left its sandbox or scratch course behind"
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
        shutil.rmtree(logs, ignore_errors=True)


def test_a_running_dask_cluster_gets_the_same_grades(courses, dask_scheduler):
    sequential, _ = courses
    course = sequential.parent / "cluster"
    students = ["solution", "mistake", "os_exit"]
    done = run_parallel(course, "--scheduler", dask_scheduler, *(f"--student={s}" for s in students))
    assert done.returncode == 0 and "3 graded, 0 failed" in done.stdout, done.stdout + done.stderr[-3000:]
    seq = gradebook_dump(f"sqlite:///{sequential / 'gradebook.db'}", ASSIGNMENT)
    got = gradebook_dump(f"sqlite:///{course / 'gradebook.db'}", ASSIGNMENT)
    want = {k: v for k, v in seq.items() if k[0] in students}
    assert set(got) == set(want)
    assert {k: v for k, v in got.items() if want[k] != v} == {}


# ------------------------------------------------------------------------------------------ PostgreSQL

def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="module")
def postgres_url():
    """A throw-away PostgreSQL server (Debian's ``postgresql`` package), on 127.0.0.1 and a free port."""
    pg = _pg_bin()
    if pg is None:
        pytest.skip("Debian's postgresql package is not installed (no initdb)")
    pytest.importorskip("psycopg")   # SQLAlchemy's default driver for postgresql:// URLs
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="pg-gradebook-"))
    if as_user:
        shutil.chown(data, "postgres")
    port = _free_port()
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True,  # noqa: E731
                                      timeout=120)
    run(str(pg / "initdb"), "-D", str(data / "db"), "-U", "grader", "--auth=trust")
    run(str(pg / "pg_ctl"), "-D", str(data / "db"), "-l", str(data / "log"), "-w", "-o",
        f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start")
    try:
        run(str(pg / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "grader", "gradebook")
        yield f"postgresql://grader@127.0.0.1:{port}/gradebook"
    finally:
        subprocess.run([*as_user, str(pg / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"],
                       capture_output=True, timeout=120)
        shutil.rmtree(data, ignore_errors=True)


def test_postgresql_gradebook_gets_the_same_grades(courses, postgres_url):
    sequential, _ = courses
    course = sequential.parent / "postgres"
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force", f"--db={postgres_url}")
    students = ["solution", "mistake", "not_json"]
    done = run_parallel(course, "--db-url", postgres_url, *(f"--student={s}" for s in students))
    assert "2 graded, 1 failed" in done.stdout, done.stdout + done.stderr[-3000:]
    seq = gradebook_dump(f"sqlite:///{sequential / 'gradebook.db'}", ASSIGNMENT)
    pg = gradebook_dump(postgres_url, ASSIGNMENT)
    assert not (course / "gradebook.db").exists()          # nothing went to a SQLite file instead
    want = {k: v for k, v in seq.items() if k[0] in students}
    assert set(pg) == set(want)
    assert {k: v for k, v in pg.items() if want[k] != v} == {}


# ------------------------------------------------------------------------------------------ submissions are data

def test_a_submission_with_a_link_or_a_device_is_refused_and_big_extra_files_are_left_out(tmp_path):
    from course_lib.grading import submission
    secret = tmp_path / "solution.ipynb"
    secret.write_text("BEGIN SOLUTION")
    sub = tmp_path / "submitted" / "ada" / ASSIGNMENT
    sub.mkdir(parents=True)
    (sub / "lstm.ipynb").write_text("{}")
    (sub / "big.bin").write_bytes(b"x" * (submission.MAX_EXTRA_BYTES + 1))
    files, skipped = submission.read_files(str(sub))
    assert set(files) == {"lstm.ipynb"} and skipped == ["big.bin"]
    (sub / "notes.txt").symlink_to(secret)
    with pytest.raises(submission.SubmissionRefused, match=r"notes.txt is a symbolic link: submission refused"):
        submission.read_files(str(sub))
    (sub / "notes.txt").unlink()
    os.mkfifo(sub / "pipe")
    with pytest.raises(submission.SubmissionRefused, match=r"pipe is a FIFO"):
        submission.check(str(sub))


def test_the_gradebook_password_never_needs_the_command_line(tmp_path):
    from course_lib.grading.cli import ENV_URL, gradebook_url
    with pytest.raises(ValueError, match="without a password"):
        gradebook_url("postgresql://grader:secret@db/course", None, {})
    env = {ENV_URL: "postgresql://grader:secret@db/course"}
    assert gradebook_url(None, None, env) == "postgresql://grader:secret@db/course"
    assert ENV_URL not in env, "removed once read: no worker or sandbox inherits it"
    url_file = tmp_path / "url"
    url_file.write_text("postgresql://grader:secret@db/course\n")
    assert gradebook_url(None, str(url_file), {}) == "postgresql://grader:secret@db/course"
    assert gradebook_url("postgresql://grader@db/course", None, {}) == "postgresql://grader@db/course"


# ------------------------------------------------------------------------------------------ attackers beside honest students

ATTACKERS = ["kills_every_process", "holds_the_process_limit", "outlives_the_run"]
HONEST = ["honest_a", "honest_b", "honest_c"]
BUDGET = 20          # c.TrustedExecute.submission_seconds of this class
SLOW_CELLS = ("import time\ntime.sleep(3)",) * 4        # 12 s per part; each cell far under cell_timeout


def _graded_outputs(course: Path, student: str) -> dict[str, list]:
    from test_grading_nbgrader_e2e import _meta
    nb = nbformat.read(course / "autograded" / student / ASSIGNMENT / "lstm.ipynb", as_version=4)
    return {_meta(c)["grade_id"]: c.outputs for c in nb.cells if _meta(c).get("grade")}


@pytest.fixture(scope="module")
def attacked_class(tmp_path_factory) -> Path:
    """Honest students graded beside attackers (tests/adversarial cases that attack other sandboxes), a
    deliberately slow submission, and two submissions holding symbolic links (to the solution, the gradebook)."""
    from test_grading_nbgrader_e2e import ADVERSARIAL
    course = tmp_path_factory.mktemp("attacked") / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text() + TEST_LIMITS
                                               + f"c.TrustedExecute.submission_seconds = {BUDGET}\n")
    shutil.copytree(ROOT / "solutions" / ASSIGNMENT, course / "solutions" / ASSIGNMENT)
    nbgrader(course, "generate_assignment", ASSIGNMENT)
    tokens = {"PORT": "9", "COURSE": str(course), "TABLE": "{}"}
    solution = Case("solution", ASSIGNMENT, "", {}, "", [], False)
    for student in HONEST:
        write(course, student, ASSIGNMENT, submission(course, solution, tokens))
    for student in ATTACKERS:
        write(course, student, ASSIGNMENT, submission(course, read_case(ADVERSARIAL / f"{student}.py"), tokens))
    slow = Case("slow", ASSIGNMENT, "", {}, "", [], False, after={"lstm_cell": SLOW_CELLS[0]})
    nb = submission(course, slow, tokens)
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "lstm_cell")
    nb.cells[index + 1:index + 2] = [nbformat.v4.new_code_cell(source) for source in SLOW_CELLS]
    write(course, "slow", ASSIGNMENT, nb)
    linked = course / "submitted" / "linked_notebook" / ASSIGNMENT
    linked.mkdir(parents=True)
    (linked / "lstm.ipynb").symlink_to(Path("../../..") / "solutions" / ASSIGNMENT / "lstm.ipynb")
    write(course, "linked_extra", ASSIGNMENT, submission(course, solution, tokens))
    (course / "submitted" / "linked_extra" / ASSIGNMENT / "notes.txt").symlink_to(course / "gradebook.db")
    return course


@pytest.mark.skipif(os.geteuid() != 0, reason="sandboxes apart from each other need root")
def test_attackers_graded_in_parallel_change_no_one_elses_grade_or_feedback(attacked_class):
    course = attacked_class
    done = run_parallel(course)
    assert f"{len(HONEST) + len(ATTACKERS) + 1} graded, 2 failed" in done.stdout, done.stdout + done.stderr[-3000:]
    for student in ("linked_notebook", "linked_extra"):
        assert f"FAILED {student}: " in done.stdout and "is a symbolic link: submission refused" in done.stdout
        assert not (course / "autograded" / student).exists(), "nothing of a refused submission is copied"
    seq = gradebook_dump(f"sqlite:///{course / 'gradebook.db'}", ASSIGNMENT)
    scores = {}
    for key, value in seq.items():
        if key[2] == "grade":
            scores.setdefault(key[0], {})[key[3]] = value[0]
    full = scores["honest_a"]
    assert all(v > 0 for v in full.values())
    for student in HONEST + ATTACKERS:
        assert scores[student] == full, student            # the attackers answered correctly too
    outputs = {s: _graded_outputs(course, s) for s in HONEST}
    assert outputs["honest_b"] == outputs["honest_a"] and outputs["honest_c"] == outputs["honest_a"]
    assert not any(o.get("output_type") == "error" for outs in outputs["honest_a"].values() for o in outs)
    # The slow one (12 s per part, 36 s in all): the budget of 20 s runs out in its second part at the latest;
    # what is left scores 0 with that reason, and its grading took about the budget, not 36 s.
    budget = "the time for grading this submission (20 s for all its parts) ran out"
    slow = _graded_outputs(course, "slow")
    assert scores["slow"]["lstm_backward_check"] == 0 and budget in str(slow["lstm_backward_check"])
    assert scores["slow"]["lstm_layer_check"] == 0 and budget in str(slow["lstm_layer_check"])
    log = (course / "autograded" / "trusted_grading.log").read_text()
    block = re.search(r"slow/02_lstm/lstm: .*\n((?:.*\n){3})", log)[1]
    part_seconds = [float(x) for x in re.findall(r"_check: (?:pass|FAIL); ([\d.]+) s", block)]
    assert sum(part_seconds) < BUDGET + 5, block
    assert "BEGIN SOLUTION" not in "".join(str(o) for s in ("slow", *HONEST) for o in _graded_outputs(course, s).values())
    assert "RETRIED" not in log


@pytest.mark.skipif(os.geteuid() != 0, reason="sandboxes apart from each other need root")
def test_an_interrupted_parallel_run_and_its_plain_rerun_grade_everyone(attacked_class, tmp_path):
    """The parallel command is killed (SIGKILL to its process group) while it grades an attacker whose
    double-forked child would start killing every process it may signal 15 s later; a plain re-run
    then grades everyone as if nothing had happened."""
    course = attacked_class
    students = ["outlives_the_run", *HONEST]
    env = dict(_env(course), TMPDIR=str(tmp_path))
    with open(tmp_path / "err", "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "course_lib.grading.cli", ASSIGNMENT, "--workers", "2",
                                 *(f"--student={s}" for s in students)], cwd=course, env=env,
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    log = course / "autograded" / "trusted_grading.log"
    size = log.stat().st_size if log.exists() else 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and "outlives_the_run/02_lstm" not in (log.read_text()[size:] if log.exists() else ""):
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    done = run_parallel(course, *(f"--student={s}" for s in students))
    assert "4 graded, 0 failed" in done.stdout, done.stdout + done.stderr[-3000:]
    seq = gradebook_dump(f"sqlite:///{course / 'gradebook.db'}", ASSIGNMENT)
    for student in students:
        got = {k[3]: v[0] for k, v in seq.items() if k[0] == student and k[2] == "grade"}
        assert got and all(v > 0 for v in got.values()), (student, got)


def test_nbgrader_autograde_refuses_a_linked_submission_and_drops_big_extra_files(tmp_path):
    """The same rules in sequential ``nbgrader autograde``: its first sanitize step checks the submission."""
    from traitlets.config import Config

    from course_lib.grading import submission
    from course_lib.grading.recovery import MarkGradingStarted
    config = Config()
    config.CourseDirectory.root = str(tmp_path)
    sub = tmp_path / "submitted" / "ada" / ASSIGNMENT
    sub.mkdir(parents=True)
    (sub / "lstm.ipynb").write_text("{}")
    (sub / "big.bin").write_bytes(b"x" * (submission.MAX_EXTRA_BYTES + 1))
    copied = tmp_path / "autograded" / "ada" / ASSIGNMENT
    copied.mkdir(parents=True)
    (copied / "big.bin").write_bytes(b"x")                     # as nbgrader copied it before this step
    resources = {"nbgrader": {"student": "ada", "assignment": ASSIGNMENT, "notebook": "lstm"}}
    MarkGradingStarted(config=config).preprocess(nbformat.v4.new_notebook(), resources)
    assert not (copied / "big.bin").exists()
    (sub / "lstm.ipynb").unlink()
    (sub / "lstm.ipynb").symlink_to(tmp_path / "gradebook.db")
    with pytest.raises(submission.SubmissionRefused, match="lstm.ipynb is a symbolic link"):
        MarkGradingStarted(config=config).preprocess(nbformat.v4.new_notebook(), resources)
