"""Grade every submission of an assignment in parallel, on Dask, into ONE nbgrader gradebook.

``nbgrader autograde`` grades one submission after another, on one core (with the course's
``TrustedExecute``, from one sandbox that imported PyTorch once). Here each submission is one Dask
task, and every worker keeps its own warm sandbox:

1. The parent (the only process that touches the real gradebook) makes a *template* gradebook: a
   small SQLite file holding just this assignment (its notebooks, cells, points, due date). The
   template, the instructor's ``source`` folder of the assignment and one student's submitted files
   travel with the task as bytes, so the workers need no shared filesystem. A submission is read
   only when it is sent (two per worker at a time), never followed through a link, and refused if
   it holds anything but regular files (:mod:`.submission`).
2. A worker (a Dask worker process, kept between tasks) grades the submission with nbgrader's own
   ``Autograde`` converter and the course's configuration (so ``TrustedExecute`` and its sandbox,
   unchanged), inside a private scratch course: a fresh copy of the template, then the submission.
   The sandbox's zygote, which imports torch once, lives on in the worker process, so every later
   submission only forks it. The real course directory is added to the sandbox's hidden paths.
3. The worker sends back what ``Autograde`` wrote to its scratch gradebook for that student (every
   grade's ``auto_score`` and ``needs_manual_grade``, every comment, the late penalty, the timestamp)
   and the graded notebook's files.
4. The parent copies those values, field by field, into the real gradebook with
   :class:`nbgrader.api.Gradebook` (any SQLAlchemy URL: SQLite by default, PostgreSQL works the same),
   and writes the files to ``autograded/<student>/<assignment>/``.

A submission whose grading fails (the converter raises) is counted as *failed*; what the converter
had already recorded for it (the student, the submission) is still written, as sequential nbgrader
leaves it.

Start-up is most of the cost of a small class, so the local workers are forked from a ``forkserver``
that has imported :mod:`.worker_preload` (nbgrader, torch, the checkers) once, and a Dask worker
plugin closes each worker's sandbox and scratch course when the cluster shuts down.
"""
from __future__ import annotations

import contextlib
import copy
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from distributed.diagnostics.plugin import WorkerPlugin

from . import submission

__all__ = ["SubmissionResult", "GradingSummary", "grade_assignment", "template_gradebook", "grade_one",
           "skip_iri_grammar"]


def skip_iri_grammar() -> None:
    """Make ``import rfc3987_syntax`` fail in this process, before anything imports ``jsonschema``.

    jsonschema imports it, if installed, for its optional "iri" format check, and that import builds
    a Lark grammar: 2.8 s of CPU in every process that imports nbformat. nbformat and nbgrader never
    check formats, so nothing here uses it; jsonschema skips the check when the import fails.
    """
    sys.modules.setdefault("rfc3987_syntax", None)


@dataclass
class SubmissionResult:
    """What a worker sends back for one student's submission (plain values and bytes only)."""

    student: str
    ok: bool
    error: str = ""
    timestamp: object = None                                   # datetime or None
    notebooks: dict[str, dict] = field(default_factory=dict)   # notebook -> {"grades", "comments", "late_penalty"}
    files: dict[str, bytes] = field(default_factory=dict)      # path relative to autograded/<student>/<assignment>
    log: str = ""                                              # lines for autograded/trusted_grading.log
    sandbox: list[str] = field(default_factory=list)           # the worker's sandbox report ("NOT ISOLATED ...")
    seconds: float = 0.0


@dataclass
class GradingSummary:
    """The outcome of :func:`grade_assignment`."""

    assignment: str
    graded: list[str]
    failed: dict[str, str]       # student -> reason
    seconds: float
    sandbox: list[str] = field(default_factory=list)   # distinct sandbox report lines of all workers


# ---------------------------------------------------------------------------------------------- parent side

def _load_config(root: Path):
    from traitlets.config.loader import PyFileConfigLoader

    config_file = root / "nbgrader_config.py"
    if not config_file.is_file():
        raise ValueError(f"expected an nbgrader course directory with nbgrader_config.py, got {str(root)!r}")
    return PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()


def template_gradebook(db_url: str, course_id: str, assignment: str, path: Path) -> None:
    """Copy one assignment (notebooks, grade/solution/task/source cells, due date) into a new SQLite gradebook."""
    import sqlite3

    from nbgrader.api import Gradebook, MissingEntry, get_alembic_version
    from sqlalchemy import text

    with Gradebook(db_url, course_id) as src:
        try:
            a = src.find_assignment(assignment)
        except MissingEntry:
            raise ValueError(f"expected assignment {assignment!r} in the gradebook; run "
                             f"`nbgrader generate_assignment {assignment}` first") from None
        # A new gradebook asks the `alembic` command for the schema version (a subprocess, about 1 s);
        # the new one has the course gradebook's schema, so it gets that gradebook's version.
        try:
            version = src.db.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:                       # noqa: BLE001 - no such table: ask alembic after all
            src.db.rollback()
            version = None
        version = version or get_alembic_version()
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
            db.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (version,))
        _copy_assignment(a, Gradebook(f"sqlite:///{path}", course_id))


def _copy_assignment(a, dst) -> None:
    with dst:
        dst.add_assignment(a.name, duedate=a.duedate)
        for nb in a.notebooks:
            dst.add_notebook(nb.name, a.name)
            for c in nb.grade_cells:
                dst.add_grade_cell(c.name, nb.name, a.name, max_score=c.max_score, cell_type=c.cell_type)
            for c in nb.solution_cells:
                dst.add_solution_cell(c.name, nb.name, a.name)
            for c in nb.task_cells:
                dst.add_task_cell(c.name, nb.name, a.name, max_score=c.max_score, cell_type=c.cell_type)
            for c in nb.source_cells:
                dst.add_source_cell(c.name, nb.name, a.name, source=c.source, cell_type=c.cell_type,
                                    locked=c.locked, checksum=c.checksum)


def _read_tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def _write_tree(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        dest = folder / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)


def _write_result(gb, assignment: str, result: SubmissionResult) -> None:
    """The single writer: copy one worker's result into the real gradebook, field by field."""
    from .nbgrader_plugin import _COMMENT

    if not result.notebooks and result.timestamp is None and not result.ok:
        return                                   # failed before nbgrader recorded anything
    gb.update_or_create_student(result.student)
    if result.timestamp is not None:
        submission = gb.update_or_create_submission(assignment, result.student, timestamp=result.timestamp)
    else:
        submission = gb.update_or_create_submission(assignment, result.student)
    for nb in submission.notebooks:
        theirs = result.notebooks.get(nb.name)
        if theirs is None:
            continue
        for grade in nb.grades:
            if grade.name in theirs["grades"]:
                grade.auto_score, grade.needs_manual_grade = theirs["grades"][grade.name]
        for comment in nb.comments:
            if comment.name in theirs["comments"]:
                auto, manual = theirs["comments"][comment.name]
                comment.auto_comment = auto
                if not comment.manual_comment or comment.manual_comment.startswith(_COMMENT):
                    comment.manual_comment = manual
        nb.late_submission_penalty = theirs["late_penalty"]
    gb.db.commit()


def _progress(total: int) -> Callable[[bool], None]:
    """A progress bar (tqdm, on stderr): submissions done, failed and left."""
    from tqdm import tqdm

    bar = tqdm(total=total, unit="submission", file=sys.stderr, dynamic_ncols=True)
    counts = {"done": 0, "failed": 0}

    def step(ok: bool) -> None:
        counts["done" if ok else "failed"] += 1
        left = total - counts["done"] - counts["failed"]
        bar.set_postfix(done=counts["done"], failed=counts["failed"], left=left, refresh=False)
        bar.update(1)
        if left == 0:
            bar.close()

    bar.set_postfix(done=0, failed=0, left=total, refresh=False)
    return step


def grade_assignment(assignment: str, *, root: str | os.PathLike = ".", students: Iterable[str] | None = None,
                     workers: int | None = None, scheduler: str | None = None, db_url: str | None = None,
                     progress: bool = True) -> GradingSummary:
    """Autograde every submission of ``assignment`` in parallel; same gradebook as ``nbgrader autograde``.

    ``root`` is the course directory (with ``nbgrader_config.py``). ``workers`` local worker processes
    (default: the number of cores) on a Dask ``LocalCluster``, or the Dask cluster at ``scheduler``
    (``"tcp://host:8786"``). ``db_url`` overrides the gradebook's SQLAlchemy URL (default: the course's,
    ``sqlite:///<root>/gradebook.db``). Already graded submissions are graded again, like ``--force``.
    """
    from nbgrader.coursedir import CourseDirectory

    if not isinstance(assignment, str) or not assignment or "/" in assignment:
        raise ValueError(f"expected an assignment name such as '02_lstm', got {assignment!r}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"expected a positive number of workers, got {workers!r}")
    root = Path(root).resolve()
    config = _load_config(root)
    config.CourseDirectory.root = str(root)
    if db_url:
        config.CourseDirectory.db_url = db_url
    coursedir = CourseDirectory(config=config)
    submitted = root / coursedir.submitted_directory
    found = sorted(p.parent.name for p in submitted.glob(f"*/{assignment}") if p.is_dir())
    chosen = found if students is None else [s for s in students if s in found]
    if students is not None and len(chosen) != len(list(students)):
        missing = sorted(set(students) - set(found))
        raise ValueError(f"expected submissions in {submitted}/<student>/{assignment}, none for {missing}")
    source = root / coursedir.source_directory / assignment
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="grade-parallel-") as tmp:
        template = Path(tmp) / "template.db"
        template_gradebook(coursedir.db_url, coursedir.course_id, assignment, template)
        shared = {"template": template.read_bytes(), "source": _read_tree(source), "root": str(root),
                  "assignment": assignment, "config": (root / "nbgrader_config.py").read_text(encoding="utf-8")}
        results = _run_on_dask(shared, {s: submitted / s / assignment for s in chosen},
                               workers=workers, scheduler=scheduler, progress=progress, db_url=coursedir.db_url,
                               course_id=coursedir.course_id, autograded=root / coursedir.autograded_directory)
    graded = sorted(r.student for r in results if r.ok)
    failed = {r.student: r.error for r in results if not r.ok}
    sandbox = list(dict.fromkeys(line for r in results for line in r.sandbox))
    return GradingSummary(assignment, graded, failed, time.perf_counter() - t0, sandbox)


def _run_on_dask(shared: dict, submissions: dict[str, Path], *, workers, scheduler, progress,
                 db_url: str, course_id: str, autograded: Path) -> list[SubmissionResult]:
    """Send the submissions to the workers a few at a time (each read only when it is sent, so the parent never
    holds the class in memory), and write each result into the gradebook as it comes back."""
    from dask.distributed import Client, as_completed
    from nbgrader.api import Gradebook

    step = _progress(len(submissions)) if progress and submissions else (lambda ok: None)
    results, futures = [], {}
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            n = workers or os.cpu_count() or 1
            client = stack.enter_context(Client(stack.enter_context(_local_cluster(n))))
        else:
            client = stack.enter_context(Client(scheduler))
            n = max(1, len(client.scheduler_info().get("workers", {})))
        try:
            client.register_plugin(_CloseSandbox(), name="course_lib-close-sandbox")
            shared_future = client.scatter(shared, broadcast=True)
            queue = iter(submissions.items())
            running = as_completed()
            with Gradebook(db_url, course_id) as gb:
                def done(result: SubmissionResult) -> None:
                    _write_result(gb, shared["assignment"], result)
                    dest = autograded / result.student / shared["assignment"]
                    if result.ok:
                        shutil.rmtree(dest, ignore_errors=True)
                        _write_tree(dest, result.files)
                    if result.log:
                        autograded.mkdir(parents=True, exist_ok=True)
                        with open(autograded / "trusted_grading.log", "a", encoding="utf-8") as f:
                            f.write(result.log)
                    results.append(result)
                    step(result.ok)

                def send_next() -> None:
                    for student, folder in queue:
                        try:
                            files, skipped = submission.read_files(str(folder))
                        except (submission.SubmissionRefused, OSError) as exc:
                            done(SubmissionResult(student, False, str(exc)))
                            continue
                        future = client.submit(grade_one, shared_future, student, files,
                                               key=f"grade-{student}-{os.getpid()}", pure=False)
                        futures[future] = (student, skipped)
                        running.add(future)
                        return

                for _ in range(2 * n):                 # two per worker: none waits, few are held
                    send_next()
                for future in running:
                    student, skipped = futures.pop(future)
                    try:
                        result = future.result()
                    except Exception as exc:           # the worker died: no partial state to copy
                        result = SubmissionResult(student, False, f"worker lost: {exc}")
                    del future
                    result.log += "".join(f"{student}: {rel} is larger than "
                                          f"{submission.MAX_EXTRA_BYTES // 2**20} MiB: not copied to autograded/ or "
                                          f"the feedback\n" for rel in skipped)
                    done(result)
                    send_next()
        except BaseException:                          # Ctrl-C, or the gradebook failed: stop what is queued
            if futures:
                client.cancel(list(futures))
            raise
    return results


@contextlib.contextmanager
def _local_cluster(workers: int):
    """A ``LocalCluster`` of one-thread worker processes forked from a forkserver that imported
    :mod:`.worker_preload` (nbgrader, torch, the checkers) once; spawned workers would each import them.

    The setting stays on while the cluster runs, so a worker the nanny restarts is forked warm too.
    """
    import multiprocessing

    import dask
    from dask.distributed import LocalCluster
    from distributed.utils import get_mp_context

    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        get_mp_context()         # sets distributed's own forkserver preload list once; ours replaces it
        multiprocessing.get_context("forkserver").set_forkserver_preload(
            ["distributed", "course_lib.grading.worker_preload"])
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=40) as cluster:
            yield cluster


class _CloseSandbox(WorkerPlugin):
    """Dask worker plugin: when a worker shuts down, close its sandbox's zygote and remove its scratch course."""

    idempotent = True

    def teardown(self, worker) -> None:
        _SCRATCH["closing"] = True     # a submission still grading cleans up again when it ends
        _close_worker()


def _close_worker() -> None:
    from .nbgrader_plugin import _close_zygote

    _close_zygote()
    work = _SCRATCH.pop("dir", None)
    if work is not None:
        shutil.rmtree(work, ignore_errors=True)
    _SCRATCH.pop("config", None)


# ---------------------------------------------------------------------------------------------- worker side

_SCRATCH: dict[str, object] = {}


def _scratch() -> Path:
    """This worker process's private course directory, kept between tasks (so the sandbox keeps its zygote)."""
    if "dir" not in _SCRATCH:
        _SCRATCH["dir"] = Path(tempfile.mkdtemp(prefix="grade-worker-"))
    return _SCRATCH["dir"]


def _worker_config(work: Path, text: str):
    """The course's configuration, read once per worker (reading runs nbgrader_config.py); a copy per task."""
    cached = _SCRATCH.get("config")
    if cached is None or cached[0] != text:
        _SCRATCH["config"] = cached = (text, _load_config(work))
    return copy.deepcopy(cached[1])


def grade_one(shared: dict, student: str, files: dict[str, bytes]) -> SubmissionResult:
    """Worker task: autograde one submission with nbgrader's ``Autograde`` in this process's scratch course."""
    try:
        return _grade_one(shared, student, files)
    finally:
        if _SCRATCH.get("closing"):            # the worker shut down meanwhile: remove what this task re-made
            _close_worker()


def _grade_one(shared: dict, student: str, files: dict[str, bytes]) -> SubmissionResult:
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory

    t0 = time.perf_counter()
    assignment, real_root = shared["assignment"], Path(shared["root"])
    work = _scratch()
    for name in ("source", "submitted", "autograded"):
        shutil.rmtree(work / name, ignore_errors=True)
    (work / "nbgrader_config.py").write_text(shared["config"], encoding="utf-8")   # the course's, shipped
    db = work / "gradebook.db"
    db.write_bytes(shared["template"])
    _write_tree(work / "source" / assignment, shared["source"])
    _write_tree(work / "submitted" / student / assignment, files)

    config = _worker_config(work, shared["config"])
    config.CourseDirectory.root = str(work)
    config.CourseDirectory.source_directory = "source"
    config.CourseDirectory.submitted_directory = "submitted"
    config.CourseDirectory.autograded_directory = "autograded"
    config.CourseDirectory.db_url = f"sqlite:///{db}"
    config.CourseDirectory.assignment_id = assignment
    config.CourseDirectory.student_id = student
    hidden = list(config.TrustedExecute.hide_paths) if "hide_paths" in config.TrustedExecute else []
    config.TrustedExecute.hide_paths = [*hidden, str(real_root)]     # the real course stays out of reach
    config.Autograde.force = True
    result = SubmissionResult(student, True)
    try:
        coursedir = CourseDirectory(config=config)
        Autograde(coursedir=coursedir, config=config).start()
    except BaseException as exc:                 # nbgrader's failures are NbGraderException, others too
        if isinstance(exc, KeyboardInterrupt):
            raise
        result.ok = False
        result.error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    with Gradebook(f"sqlite:///{db}") as gb:
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            sub = None
        if sub is not None:
            result.timestamp = sub.timestamp
            for nb in sub.notebooks:
                result.notebooks[nb.name] = {
                    "grades": {g.name: (g.auto_score, g.needs_manual_grade) for g in nb.grades},
                    "comments": {c.name: (c.auto_comment, c.manual_comment) for c in nb.comments},
                    "late_penalty": nb.late_submission_penalty,
                }
    out = work / "autograded" / student / assignment
    if result.ok and out.is_dir():
        result.files = _read_tree(out)
    log = work / "autograded" / "trusted_grading.log"
    if log.is_file():
        result.log = log.read_text(encoding="utf-8")
    from . import nbgrader_plugin
    zygote = nbgrader_plugin._ZYGOTE["zygote"]
    result.sandbox = list(getattr(zygote, "report", None) or [])
    result.seconds = time.perf_counter() - t0
    return result
