"""A worker of the parallel grader: its state between submissions, and :func:`grade_one`, its task.

Each Dask worker process grades one submission at a time with nbgrader's own ``Autograde`` and the
course's configuration, inside a private scratch course it keeps between tasks (a fresh copy of the
template gradebook, then the submission), so the sandbox's zygote (:mod:`.shared_zygote`), which
imports torch once, lives on and every later submission only forks it. It sends back plain values
and bytes (:class:`SubmissionResult`). :class:`CloseSandbox`, a Dask worker plugin, closes the
zygote and removes the scratch course when the worker shuts down.
"""
from __future__ import annotations

import copy
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

from . import submission
from .shared_zygote import close_shared_zygote, shared_report

__all__ = ["SubmissionResult", "grade_one", "load_config", "CloseSandbox"]


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


def load_config(root: Path):
    """The course's ``nbgrader_config.py`` in ``root``, read (it runs the file)."""
    from traitlets.config.loader import PyFileConfigLoader

    config_file = root / "nbgrader_config.py"
    if not config_file.is_file():
        raise ValueError(f"expected an nbgrader course directory with nbgrader_config.py, got {str(root)!r}")
    return PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()


class CloseSandbox(WorkerPlugin):
    """Dask worker plugin: when a worker shuts down, close its sandbox's zygote and remove its scratch course."""

    idempotent = True

    def teardown(self, worker) -> None:
        _SCRATCH["closing"] = True     # a submission still grading cleans up again when it ends
        _close_worker()


def _close_worker() -> None:
    close_shared_zygote()
    work = _SCRATCH.pop("dir", None)
    if work is not None:
        shutil.rmtree(work, ignore_errors=True)
    _SCRATCH.pop("config", None)


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
        _SCRATCH["config"] = cached = (text, load_config(work))
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
    submission.write_tree(work / "source" / assignment, shared["source"])
    submission.write_tree(work / "submitted" / student / assignment, files)

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
        result.files = submission.read_tree(out)
    log = work / "autograded" / "trusted_grading.log"
    if log.is_file():
        result.log = log.read_text(encoding="utf-8")
    result.sandbox = shared_report()
    result.seconds = time.perf_counter() - t0
    return result
