"""The grader's end of a worker's channel: run the notebook's cells there, then call its functions.

:class:`Worker` starts a worker from the :class:`.zygote.Zygote` (its other end is
:mod:`..sandboxed.worker`), sends it the notebook's code cells and watches each one against
``Limits.cell_timeout``: a cell that hangs or ends the process is recorded in the notebook's
:class:`CellPlan` and skipped by the next worker (the way a notebook run goes on after a cell that
timed out), so one bad cell costs only the names it would have defined. Then
:meth:`Worker.function` hands out a :class:`.remote.RemoteFunction` for each name a checker needs.

If the worker dies, hangs or answers garbage, a call raises :class:`SandboxFailure`, a
``BaseException`` that no checker catches, with the :class:`..reasons.Reason` it stopped for.
"""
from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .. import protocol
from ..limits import Limits
from ..reasons import Reason
from .remote import RemoteFunction, copy_back, raise_from_student_line, remote_exception
from .zygote import Zygote, describe_exit

__all__ = ["SandboxFailure", "SandboxTimeout", "CellPlan", "Worker", "NotDefined", "OUTSIDE"]

log = logging.getLogger(__name__)


class SandboxFailure(BaseException):
    """The student's process ended, hung or sent something unreadable; the message says which, for the student.

    ``reason`` says which for the grader (:class:`.reasons.Reason`; never read from the message):
    ``STOPPED_FROM_OUTSIDE`` when it was ended from outside the student's code (the host, the grader),
    a part graded again instead of being blamed on the student; ``FORBIDDEN`` when a graded call
    reached a forbidden operation, ``detail`` then names it.
    """

    def __init__(self, message: str = "", reason: Reason = Reason.BROKEN, detail: str = ""):
        super().__init__(message)
        self.reason, self.detail = reason, detail

    @property
    def outside(self) -> bool:
        """Whether it was ended from outside the student's code."""
        return self.reason is Reason.STOPPED_FROM_OUTSIDE


OUTSIDE = "the grading process was stopped from outside your code (by the grading machine, not by you)"


class SandboxTimeout(SandboxFailure):
    """The student's code did not answer within the time limit (the process was stopped)."""


class NotDefined(Exception):
    """The notebook does not define the name a graded cell uses."""


@dataclass
class CellPlan:
    """What is known about running one notebook's cells: which to skip and what each raised."""

    skip: dict[int, str] = field(default_factory=dict)                 # cell index -> why it was skipped
    errors: dict[int, tuple[str, str]] = field(default_factory=dict)   # cell index -> (ename, evalue)
    ran: set[int] = field(default_factory=set)


class Worker:
    """One sandboxed process for one graded part: cells first, then calls. Use as a context manager."""

    def __init__(self, zygote: Zygote, limits: Limits, cells: list[tuple[int, str]], plan: CellPlan,
                 deadline: float | None = None, forbid: list[str] = ()):
        self.zygote, self.limits, self.cells, self.plan = zygote, limits, cells, plan
        self.deadline = deadline                       # time.monotonic() when the submission's budget ends
        self.forbid = list(forbid)                      # switched off in the worker: see .forbid
        self.pid: int | None = None
        self.sock: socket.socket | None = None
        self._next_id = 0
        self.dead: str | None = None                   # why the worker can no longer be used, for the student
        self.dead_reason = Reason.BROKEN               # ... and for the grader
        self.dead_detail = ""

    # -- lifecycle
    def __enter__(self) -> "Worker":
        if self.pid is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.pid is not None:
            self.zygote.finish(self.pid)
            self.pid = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def start(self) -> None:
        """Run the notebook's cells in a fresh worker, skipping those known to hang or crash."""
        self.check_size()
        for _ in range(len(self.cells) + 1):
            self.close()
            self.pid, self.sock = self.zygote.spawn(self.forbid)
            self.dead, self.dead_reason, self.dead_detail = None, Reason.BROKEN, ""
            todo = [(i, src) for i, src in self.cells if i not in self.plan.skip]
            try:
                body = protocol.encode({protocol.CELLS: todo, protocol.FORBID: self.forbid}, self.limits.cells_wire())
            except protocol.ProtocolError:
                raise SandboxFailure(_too_big(todo, self.limits), Reason.TOO_LARGE) from None
            try:
                protocol.send(self.sock.fileno(), body)
            except OSError:
                pass                                       # the receive below says what happened
            current = None
            try:
                while True:
                    timeout = self.limits.cell_timeout if current is not None else 30.0
                    event = self._receive(*self._until(timeout))
                    kind = event.get(protocol.EVENT)
                    if kind == protocol.EVENT_CELL:
                        current = event["index"]
                    elif kind == protocol.EVENT_CELL_DONE:
                        index = event["index"]
                        self.plan.ran.add(index)
                        if event.get("error"):
                            ename, evalue = event["error"]
                            self.plan.errors[index] = (str(ename), str(evalue))
                        current = None
                    elif kind == protocol.EVENT_READY:
                        return
                    else:
                        self._die(f"unexpected message while running the notebook: {sorted(event)}", Reason.BROKEN)
            except SandboxFailure as exc:
                if current is None or exc.reason in (Reason.STOPPED_FROM_OUTSIDE, Reason.OUT_OF_TIME):
                    raise
                self.plan.skip[current] = str(exc)
                self.plan.errors[current] = ("CellSkipped", f"this cell was stopped and skipped: {exc}")
                log.info("worker %s: cell %s skipped (%s)", self.pid, current, exc)
        raise SandboxFailure("your notebook could not be run", Reason.BROKEN)

    def check_size(self) -> None:
        """Refuse, with the reason, a notebook too large to send to the sandbox whole (never cut it)."""
        if len(self.cells) > self.limits.max_cells or \
                sum(len(src.encode("utf-8", "replace")) for _, src in self.cells) > self.limits.message_bytes // 2:
            raise SandboxFailure(_too_big(self.cells, self.limits), Reason.TOO_LARGE)

    # -- talking
    def _budget_text(self) -> str:
        return (f"the time for grading this submission ({self.limits.submission_seconds:g} s for all its parts) "
                f"ran out")

    def _until(self, seconds: float) -> tuple[float, float]:
        """(deadline, seconds) of a wait of ``seconds``, cut short by the submission's budget (seconds < 0 then)."""
        now = time.monotonic()
        if self.deadline is not None and self.deadline < now + seconds:
            return self.deadline, -1.0
        return now + seconds, seconds

    def _die(self, message: str, reason: Reason, detail: str = "") -> NoReturn:
        """The worker can no longer be used: remember why, and raise it (as a timeout for the two time limits)."""
        self.dead, self.dead_reason, self.dead_detail = message, reason, detail
        self._raise_dead()

    def _raise_dead(self) -> NoReturn:
        kind = SandboxTimeout if self.dead_reason in (Reason.TIMED_OUT, Reason.OUT_OF_TIME) else SandboxFailure
        raise kind(self.dead, self.dead_reason, self.dead_detail)

    def _receive(self, deadline: float, seconds: float) -> dict:
        if self.dead:
            self._raise_dead()
        try:
            body = protocol.recv(self.sock.fileno(), self.limits.wire(), deadline)
            message = protocol.decode(body, self.limits.wire())
        except TimeoutError:
            self.zygote.finish(self.pid)
            if seconds >= 0:
                self._die(f"did not finish within {seconds:g} s", Reason.TIMED_OUT)
            self._die(self._budget_text(), Reason.OUT_OF_TIME)
        except (EOFError, OSError):
            end = self.zygote.exit_of(self.pid)
            if end.outside:
                self._die(OUTSIDE, Reason.STOPPED_FROM_OUTSIDE)
            limit = self.limits.resident_bytes if end.memory else None
            if end.status is not None:
                self._die(f"your code ended the grading process ({describe_exit(end.status, limit)})", Reason.CRASHED)
            self._die("your code closed the grading process's channel", Reason.BROKEN)
        except protocol.ProtocolError as exc:
            self._die(f"the grading process sent back something unreadable ({exc})", Reason.BROKEN)
        if type(message) is not dict:
            self._die("the grading process sent back something unreadable", Reason.BROKEN)
        if protocol.FORBIDDEN in message:                     # the worker's last word: a forbidden call, see .forbid
            what = str(message[protocol.FORBIDDEN])[:2000]
            self._die(f"called {what}", Reason.FORBIDDEN, what)
        if protocol.FATAL in message:
            self._die(f"the grading process failed: {message[protocol.FATAL]}", Reason.BROKEN)
        return message

    def _request(self, message: dict, timeout: float) -> dict:
        if self.dead:
            self._raise_dead()
        self._next_id += 1
        rid = self._next_id
        try:
            body = protocol.encode({"id": rid, **message}, self.limits.wire())
            protocol.send(self.sock.fileno(), body)
        except OSError:
            pass                                           # the receive below says what happened
        reply = self._receive(*self._until(timeout))
        if reply.get("id") != rid:
            self._die("the grading process's reply did not match the request", Reason.BROKEN)
        return reply

    def function(self, name: str) -> Any:
        """A :class:`RemoteFunction` for the notebook's ``name`` (or its plain value if it is not callable)."""
        reply = self._request({"op": protocol.OP_DESCRIBE, "name": name}, 30.0)
        if not reply.get("defined"):
            raise NotDefined(f"name '{name}' is not defined")
        if not reply.get("callable"):
            return reply.get("value")
        return RemoteFunction(self, name, reply.get("params"))

    def call(self, name: str, args: tuple, kwargs: dict) -> Any:
        reply = self._request({"op": protocol.OP_CALL, "name": name, "args": list(args), "kwargs": dict(kwargs)},
                              self.limits.call_timeout)
        if "error" in reply:
            err = reply["error"] if type(reply["error"]) is dict else {}
            exc = remote_exception(err.get("type", "Exception"), str(err.get("message", ""))[:2000])
            raise_from_student_line(exc, err.get("where"))
        if not {"result", "args_after", "kwargs_after", "changed_lists"} <= set(reply):
            self._die("the grading process's reply was incomplete", Reason.BROKEN)
        copy_back(list(args), reply["args_after"], dict(kwargs), reply["kwargs_after"], reply["changed_lists"])
        return reply["result"]


def _too_big(cells: list[tuple[int, str]], limits: Limits) -> str:
    size = sum(len(src.encode("utf-8", "replace")) for _, src in cells)
    return (f"your notebook has {len(cells)} code cells ({size / 2**20:.1f} MiB of code); the grader runs at most "
            f"{limits.max_cells} cells and {limits.message_bytes // 2**21} MiB of code, so it was not graded: "
            f"remove the cells you do not need (large data belongs in a file, not in a cell)")


