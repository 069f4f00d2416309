"""Where a graded part's verdict is decided: the one place that says whether a part passed, and why.

:func:`grade_part` takes one test cell's checker calls (:func:`.testcells.parse_test_cell`), what the
static scan found in the student's code (:func:`.policy.policy_findings`) and the submission's time
budget, and returns a :class:`Verdict` with a :class:`.reasons.Reason`, in this order:

1. a forbidden shortcut found in the code the part reaches: ``FORBIDDEN``, nothing is run;
2. the submission's time budget already spent: ``OUT_OF_TIME``, nothing is run;
3. otherwise a fresh sandboxed worker runs the code cells above the test cell (:class:`.grader.worker.Worker`),
   and the REAL checkers run here, in the grader, each student name a :class:`.grader.remote.RemoteFunction`,
   once as written and once more with a fresh secret seed. A checker's ``CheckFailed`` is
   ``MISTAKE`` (it named the mistake) or ``CHECK_FAILED``; a missing name ``NOT_DEFINED``; the worker's
   end is the reason its :class:`.grader.worker.SandboxFailure` carries (``TIMED_OUT``, ``CRASHED``,
   ``FORBIDDEN`` for a forbidden operation called while graded, ``STOPPED_FROM_OUTSIDE``...).
   A part stopped from outside the student's code is graded once more, never blamed on the student.

Nothing here reads a message to decide: every reason comes from an exception's class or a
:class:`.reasons.Reason`. nbgrader then scores the cell from its outputs (an error output is 0), which
:class:`.execute.TrustedExecute` writes from the verdict.
"""
from __future__ import annotations

import contextlib
import inspect
import io
import logging
import re
import secrets
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from .grader.worker import CellPlan, NotDefined, SandboxFailure, Worker
from .grader.zygote import Zygote
from .limits import Limits
from .outcomes import Outcome
from .policy import Finding
from .reasons import Reason
from .testcells import CheckCall, GradingConfigError, Student

__all__ = ["Verdict", "Reason", "grade_part"]

log = logging.getLogger(__name__)


@dataclass
class Verdict:
    """One graded part's verdict: the reason, what to show the student, what to log for the instructor."""

    reason: Reason
    stdout: str = ""                                       # the checkers' lines
    message: str = ""                                      # why it did not pass, for the student
    log: list[str] = field(default_factory=list)
    mistakes: tuple[str, ...] = ()                         # catalogue labels the checker named (MISTAKE)
    shortcuts: tuple[str, ...] = ()                        # forbidden patterns the static scan found (FORBIDDEN)
    ran: bool = True                                       # False: decided without running anything

    @property
    def passed(self) -> bool:
        return self.reason is Reason.PASSED

    @property
    def ename(self) -> str:
        """The error name of the graded cell's output ('' when it passed)."""
        return self.reason.ename

    @property
    def outcome(self) -> Outcome:
        """For the class report (:mod:`.outcomes`)."""
        return self.reason.outcome

    @property
    def outside(self) -> bool:
        """Stopped from outside the student's code (the host, the grader)."""
        return self.reason is Reason.STOPPED_FROM_OUTSIDE


def _has_seed(checker: Any) -> bool:
    try:
        return "seed" in inspect.signature(checker).parameters
    except (TypeError, ValueError):
        return False


def grade_part(zygote: Zygote, limits: Limits, cells: list[tuple[int, str]], plan: CellPlan,
               calls: list[CheckCall], checkers: Any, *, secret_seed: int | None = None,
               deadline: float | None = None, forbid: list[str] = (), findings: list[Finding] = (),
               names: list[str] = ()) -> Verdict:
    """The verdict of one test cell's checks; never raises for anything the student did.

    ``findings`` are the static scan's forbidden shortcuts in the code this part reaches (``names``:
    the student names it grades, for the message); ``deadline`` (a ``time.monotonic()`` value) is
    when the submission's time budget ends; ``forbid`` is switched off in the worker (:mod:`.sandboxed.forbid`).
    ``secret_seed`` (default: a fresh ``secrets.randbelow(2**31)``) is used for one more run of the
    first call whose checker takes ``seed``; it is logged, never shown. A part whose worker was stopped
    from outside the student's code is graded once more, and the log says so (``RETRIED``); if that
    happens again the part fails with a message that does not blame the student and a ``FLAG`` in the
    log for the instructor.
    """
    if findings:
        message = (f"{', '.join(names)}: uses " + ", ".join(f.describe() for f in findings)
                   + ", which this assignment does not allow. This part scores 0.")
        return Verdict(Reason.FORBIDDEN, message=message, shortcuts=tuple(sorted({f.pattern for f in findings})),
                       ran=False)
    if deadline is not None and time.monotonic() >= deadline:
        return Verdict(Reason.OUT_OF_TIME, ran=False,
                       message=f"the time for grading this submission ({limits.submission_seconds:g} s for all its "
                               f"parts) ran out before this part: it scores 0. Look for code that is far too slow.")
    first = _run_checks(zygote, limits, cells, plan, calls, checkers, secret_seed, deadline, forbid)
    if not first.outside:
        return first
    log.warning("a part's sandbox was stopped from outside the student's code; grading it once more")
    again = _run_checks(zygote, limits, cells, plan, calls, checkers, secret_seed, deadline, forbid)
    again.log.insert(0, "RETRIED: the first attempt was stopped from outside the student's code")
    if again.outside:
        again.log.append("FLAG for the instructor: stopped from outside the student's code twice; grade this part "
                         "again (nbgrader autograde --force) or by hand")
        again.message += " Your instructor has been told and will grade this part again."
    return again


def _run_checks(zygote: Zygote, limits: Limits, cells: list[tuple[int, str]], plan: CellPlan,
                calls: list[CheckCall], checkers: Any, secret_seed: int | None, deadline: float | None,
                forbid: list[str]) -> Verdict:
    for call in calls:
        if not callable(getattr(checkers, call.checker, None)):
            raise GradingConfigError(f"course_lib.checkers has no {call.checker}")
    secret = secrets.randbelow(2**31) if secret_seed is None else secret_seed
    runs = [(c, dict(c.kwargs)) for c in calls]
    seeded = next((c for c in calls if _has_seed(getattr(checkers, c.checker))), None)
    if seeded is not None:
        runs.append((seeded, {**seeded.kwargs, "seed": secret}))
    result = Verdict(Reason.PASSED, log=[f"secret seed {secret}" if seeded is not None else "no seeded checker"])
    out = io.StringIO()
    worker = Worker(zygote, limits, cells, plan, deadline, forbid)
    try:
        worker.start()
    except SandboxFailure as exc:
        worker.close()
        return _failed(result, out, exc.reason, f"your notebook could not be run in the sandbox: {exc}.")
    with worker:
        for k, (call, kwargs) in enumerate(runs):
            secret_run = seeded is not None and k == len(runs) - 1
            names = ", ".join(call.student_names()) or "your code"
            try:
                resolved = {n: worker.function(n) for n in call.student_names()}
                args = [resolved[a.name] if isinstance(a, Student) else a for a in call.args]
                kw = {key: resolved[v.name] if isinstance(v, Student) else v for key, v in kwargs.items()}
                with contextlib.redirect_stdout(io.StringIO() if secret_run else out):
                    getattr(checkers, call.checker)(*args, **kw)
            except NotDefined as exc:
                return _failed(result, out, Reason.NOT_DEFINED, str(exc))
            except AssertionError as exc:            # CheckFailed, the checkers' one way to say "wrong"
                message = _scrub(str(exc), secret) if secret_run else str(exc)
                if secret_run:
                    message += " (This was an extra check with a fresh random seed, as in every graded run.)"
                mistakes = tuple(str(m) for m in getattr(exc, "mistakes", ()))
                return _failed(result, out, Reason.MISTAKE if mistakes else Reason.CHECK_FAILED, message, mistakes)
            except SandboxFailure as exc:
                if exc.reason is Reason.FORBIDDEN:
                    return _failed(result, out, Reason.FORBIDDEN,
                                   f"{names}: called {exc.detail}, which this assignment does not allow. "
                                   f"This part scores 0.")
                return _failed(result, out, exc.reason, f"{names}: {exc}. {_hint(exc.reason, limits)}")
            except Exception as exc:  # noqa: BLE001 - a checker that choked on what came back
                result.log.append(f"checker {call.checker} raised {type(exc).__name__}: {exc}\n"
                                  f"{traceback.format_exc(limit=-6)}")
                return _failed(result, out, Reason.CHECK_FAILED,
                               f"{names}: the checker could not read what your code returned "
                               f"({type(exc).__name__}: {str(exc)[:200]}).")
            if secret_run:
                print(f"{', '.join(call.student_names())}: also correct on a fresh random seed.", file=out)
    result.stdout = out.getvalue()
    return result


def _failed(result: Verdict, out: io.StringIO, reason: Reason, message: str,
            mistakes: tuple[str, ...] = ()) -> Verdict:
    result.reason, result.stdout, result.message, result.mistakes = reason, out.getvalue(), message, mistakes
    result.log.append(f"{reason.ename}: {message}")
    return result


def _scrub(message: str, secret: int) -> str:
    return re.sub(rf"\bseed={secret}\b", "seed=(a secret one)", message)


def _hint(reason: Reason, limits: Limits) -> str:
    """What the student can do about a worker that stopped for ``reason``."""
    if reason is Reason.OUT_OF_TIME:
        return ("Some part of your notebook is far too slow (or never ends); the parts not graded in time "
                "score 0.")
    if reason is Reason.STOPPED_FROM_OUTSIDE:
        return "This is not your code's fault."
    if reason is Reason.TIMED_OUT:
        return ("Look for a loop that never ends, or work that is far too slow. "
                "This part scores 0.")
    if reason is Reason.CRASHED:
        return ("A crash, sys.exit()/os._exit() or a signal, or a limit of the sandbox "
                f"({limits.memory_bytes // 2**30} GiB of memory, {limits.cpu_seconds} s of CPU, "
                f"{limits.file_bytes // 2**20} MiB per file). This part scores 0.")
    return "This part scores 0."
