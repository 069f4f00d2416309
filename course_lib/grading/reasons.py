"""The kinds of end a graded part can have: one enum, named once, for the verdict and the sandbox's stops.

:mod:`.verdict` decides a part's :class:`Reason`; :class:`.grader.worker.SandboxFailure` carries the
reason a worker stopped (so nothing downstream reads a message to learn why); :mod:`.outcomes`
records the coarser :class:`~.outcomes.Outcome` of the class report, which :attr:`Reason.outcome` gives.
"""
from __future__ import annotations

import enum

from .outcomes import Outcome

__all__ = ["Reason"]


class Reason(str, enum.Enum):
    """Why a graded part scored what it did."""

    PASSED = "passed"                      # every check passed, the secret-seed run too
    CHECK_FAILED = "check_failed"          # a check failed (or could not read what came back), no named mistake
    MISTAKE = "mistake"                    # a check failed and named the mistake from its catalogue
    NOT_DEFINED = "not_defined"            # the notebook does not define a name the part grades
    FORBIDDEN = "forbidden"                # a forbidden shortcut: found in the code, or called while graded
    TIMED_OUT = "timed_out"                # a call or cell of the student's code did not finish in its limit
    OUT_OF_TIME = "out_of_time"            # the submission's time budget ran out (before or during this part)
    CRASHED = "crashed"                    # the student's code ended its process (a signal, exit, a limit)
    BROKEN = "broken"                      # the student's process closed its channel, failed or sent back garbage
    TOO_LARGE = "too_large"                # the notebook is too large to send to the sandbox whole
    STOPPED_FROM_OUTSIDE = "stopped_from_outside"   # the host or the grader stopped it, never the student

    @property
    def outcome(self) -> Outcome:
        """The class report's coarser kind (:mod:`.outcomes`)."""
        return _OUTCOME[self]

    @property
    def ename(self) -> str:
        """The error name the graded cell's output shows for a part that did not pass."""
        return _ENAME[self]


_OUTCOME = {Reason.PASSED: Outcome.PASSED, Reason.CHECK_FAILED: Outcome.CHECK_FAILED, Reason.MISTAKE: Outcome.MISTAKE,
            Reason.NOT_DEFINED: Outcome.NOT_DEFINED, Reason.FORBIDDEN: Outcome.POLICY,
            Reason.TIMED_OUT: Outcome.TIMEOUT, Reason.OUT_OF_TIME: Outcome.TIMEOUT, Reason.CRASHED: Outcome.CRASH,
            Reason.BROKEN: Outcome.CRASH, Reason.TOO_LARGE: Outcome.CRASH,
            Reason.STOPPED_FROM_OUTSIDE: Outcome.CRASH}
_ENAME = {Reason.PASSED: "", Reason.CHECK_FAILED: "CheckFailed", Reason.MISTAKE: "CheckFailed",
          Reason.NOT_DEFINED: "NameError", Reason.FORBIDDEN: "PolicyViolation"}
_ENAME.update({r: "GradingStopped" for r in Reason if r not in _ENAME})
