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

This module is the parent's side (the Dask orchestration); :mod:`.gradebook_copy` makes the template
and copies results into the real gradebook, :mod:`.parallel_worker` is the workers' side.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from . import submission
from .gradebook_copy import template_gradebook, write_result
from .parallel_worker import CloseSandbox, SubmissionResult, grade_one, load_config

__all__ = ["SubmissionResult", "GradingSummary", "grade_assignment", "template_gradebook", "grade_one"]


@dataclass
class GradingSummary:
    """The outcome of :func:`grade_assignment`."""

    assignment: str
    graded: list[str]
    failed: dict[str, str]       # student -> reason
    seconds: float
    sandbox: list[str] = field(default_factory=list)   # distinct sandbox report lines of all workers


# ---------------------------------------------------------------------------------------------- parent side

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
    config = load_config(root)
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
        shared = {"template": template.read_bytes(), "source": submission.read_tree(source), "root": str(root),
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
            client.register_plugin(CloseSandbox(), name="course_lib-close-sandbox")
            shared_future = client.scatter(shared, broadcast=True)
            queue = iter(submissions.items())
            running = as_completed()
            with Gradebook(db_url, course_id) as gb:
                def done(result: SubmissionResult) -> None:
                    write_result(gb, shared["assignment"], result)
                    dest = autograded / result.student / shared["assignment"]
                    if result.ok:
                        shutil.rmtree(dest, ignore_errors=True)
                        submission.write_tree(dest, result.files)
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
