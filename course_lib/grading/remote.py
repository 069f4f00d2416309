"""The trusted side's view of one worker: run the notebook's cells there, then call its functions.

:class:`Worker` starts a worker from the :class:`.sandbox.Zygote`, sends it the notebook's code cells
and watches each one against ``Limits.cell_timeout``: a cell that hangs or ends the process is
recorded in the notebook's :class:`CellPlan` and skipped by the next worker (the way a notebook
run goes on after a cell that timed out), so one bad cell costs only the names it would have defined.

:class:`RemoteFunction` is what a checker receives instead of the student's function. Calling it
sends the arguments as plain arrays, waits at most ``Limits.call_timeout`` and returns fresh
tensors decoded from the reply; it copies the post-call arguments back into the caller's tensors and
lists, so a checker still sees in-place changes; its ``__signature__`` is the student's parameter
list, so the arity check still works. The student's exception comes back as an exception of the same
name (a real ``NotImplementedError``/``ValueError``... for built-in names) raised from a frame that
shows the student's line. If the worker dies, hangs or answers garbage, the call raises
:class:`SandboxFailure`, a ``BaseException`` that no checker catches: the part fails with that reason.
"""
from __future__ import annotations

import builtins
import inspect
import keyword
import linecache
import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from . import protocol
from .sandbox import Limits, Zygote, describe_exit

__all__ = ["SandboxFailure", "RemoteError", "CellPlan", "Worker", "RemoteFunction", "NotDefined", "OUTSIDE"]

log = logging.getLogger(__name__)


class SandboxFailure(BaseException):
    """The student's process ended, hung or sent something unreadable; the message says which, for the student.

    ``outside`` is True when it was ended from outside the student's code (the host, the grader): such a
    part is graded again instead of being blamed on the student.
    """

    def __init__(self, message: str = "", outside: bool = False):
        super().__init__(message)
        self.outside = outside


OUTSIDE = "the grading process was stopped from outside your code (by the grading machine, not by you)"


class SandboxTimeout(SandboxFailure):
    """The student's code did not answer within the time limit (the process was stopped)."""


class RemoteError(Exception):
    """Base of the exceptions re-raised for the student's code when the name is not a built-in exception."""


class NotDefined(Exception):
    """The notebook does not define the name a graded cell uses."""


@dataclass
class CellPlan:
    """What is known about running one notebook's cells: which to skip and what each raised."""

    skip: dict[int, str] = field(default_factory=dict)                 # cell index -> why it was skipped
    errors: dict[int, tuple[str, str]] = field(default_factory=dict)   # cell index -> (ename, evalue)
    ran: set[int] = field(default_factory=set)


_REMOTE_TYPES: dict[str, type] = {}


def remote_exception(name: str, message: str) -> BaseException:
    """An exception named like the student's: the built-in class itself where one exists, else a RemoteError."""
    if not (isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)):
        name = "Exception"
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(message)
        except Exception:  # noqa: BLE001 - classes with other constructors
            pass
    if name not in _REMOTE_TYPES:
        _REMOTE_TYPES[name] = type(name, (RemoteError,), {"__module__": "builtins"})
    return _REMOTE_TYPES[name](message)


def _raise_from_student_line(exc: BaseException, where: Any) -> None:
    """Raise ``exc`` from a frame that points at the student's line, so checkers can quote it."""
    if not (isinstance(where, list) and len(where) == 3):
        raise exc
    lineno, func, line = where
    if not (type(lineno) is int and 1 <= lineno <= 100_000 and isinstance(func, str) and func.isidentifier()
            and not keyword.iskeyword(func) and isinstance(line, str)):
        raise exc
    filename = "<your notebook>"
    lines = [""] * (lineno - 1) + [line.replace("\n", " ") + "\n"]
    linecache.cache[filename] = (len("".join(lines)), None, lines, filename)
    source = "\n" * (lineno - 2) + f"def {func}():\n raise __exc__\n" if lineno >= 2 else \
        f"def {func}(): raise __exc__\n"
    scope: dict[str, Any] = {"__exc__": exc}
    exec(compile(source, filename, "exec"), scope)  # noqa: S102 - our template; only a checked identifier is inserted
    scope[func]()


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
        self.dead: str | None = None

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
            self.dead = None
            todo = [(i, src) for i, src in self.cells if i not in self.plan.skip]
            try:
                body = protocol.encode({"cells": todo, "forbid": self.forbid}, self.limits.cells_wire())
            except protocol.ProtocolError:
                raise SandboxFailure(_too_big(todo, self.limits)) from None
            try:
                protocol.send(self.sock.fileno(), body)
            except OSError:
                pass                                       # the receive below says what happened
            current = None
            try:
                while True:
                    timeout = self.limits.cell_timeout if current is not None else 30.0
                    event = self._receive(*self._until(timeout))
                    kind = event.get("event")
                    if kind == "cell":
                        current = event["index"]
                    elif kind == "cell_done":
                        index = event["index"]
                        self.plan.ran.add(index)
                        if event.get("error"):
                            ename, evalue = event["error"]
                            self.plan.errors[index] = (str(ename), str(evalue))
                        current = None
                    elif kind == "ready":
                        return
                    else:
                        raise SandboxFailure(f"unexpected message while running the notebook: {sorted(event)}")
            except SandboxFailure as exc:
                if current is None or exc.outside or self.dead == self._budget_text():
                    raise
                self.plan.skip[current] = str(exc)
                self.plan.errors[current] = ("CellSkipped", f"this cell was stopped and skipped: {exc}")
                log.info("worker %s: cell %s skipped (%s)", self.pid, current, exc)
        raise SandboxFailure("your notebook could not be run")

    def check_size(self) -> None:
        """Refuse, with the reason, a notebook too large to send to the sandbox whole (never cut it)."""
        if len(self.cells) > self.limits.max_cells or \
                sum(len(src.encode("utf-8", "replace")) for _, src in self.cells) > self.limits.message_bytes // 2:
            raise SandboxFailure(_too_big(self.cells, self.limits))

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

    def _receive(self, deadline: float, seconds: float) -> dict:
        if self.dead:
            raise SandboxFailure(self.dead, outside=self.dead == OUTSIDE)
        try:
            body = protocol.recv(self.sock.fileno(), self.limits.wire(), deadline)
            message = protocol.decode(body, self.limits.wire())
        except TimeoutError:
            self.dead = f"did not finish within {seconds:g} s" if seconds >= 0 else self._budget_text()
            self.zygote.finish(self.pid)
            raise SandboxTimeout(self.dead) from None
        except (EOFError, OSError):
            end = self.zygote.exit_of(self.pid)
            if end.outside:
                self.dead = OUTSIDE
                raise SandboxFailure(self.dead, outside=True) from None
            limit = self.limits.resident_bytes if end.memory else None
            self.dead = f"your code ended the grading process ({describe_exit(end.status, limit)})" \
                if end.status is not None else "your code closed the grading process's channel"
            raise SandboxFailure(self.dead) from None
        except protocol.ProtocolError as exc:
            self.dead = f"the grading process sent back something unreadable ({exc})"
            raise SandboxFailure(self.dead) from None
        if type(message) is not dict:
            self.dead = "the grading process sent back something unreadable"
            raise SandboxFailure(self.dead)
        if "fatal" in message:
            self.dead = f"the grading process failed: {message['fatal']}"
            raise SandboxFailure(self.dead)
        return message

    def _request(self, message: dict, timeout: float) -> dict:
        if self.dead:
            raise SandboxFailure(self.dead, outside=self.dead == OUTSIDE)
        self._next_id += 1
        rid = self._next_id
        try:
            body = protocol.encode({"id": rid, **message}, self.limits.wire())
            protocol.send(self.sock.fileno(), body)
        except OSError:
            pass                                           # the receive below says what happened
        reply = self._receive(*self._until(timeout))
        if reply.get("id") != rid:
            self.dead = "the grading process's reply did not match the request"
            raise SandboxFailure(self.dead)
        return reply

    def function(self, name: str) -> Any:
        """A :class:`RemoteFunction` for the notebook's ``name`` (or its plain value if it is not callable)."""
        reply = self._request({"op": "describe", "name": name}, 30.0)
        if not reply.get("defined"):
            raise NotDefined(f"name '{name}' is not defined")
        if not reply.get("callable"):
            return reply.get("value")
        return RemoteFunction(self, name, reply.get("params"))

    def call(self, name: str, args: tuple, kwargs: dict) -> Any:
        reply = self._request({"op": "call", "name": name, "args": list(args), "kwargs": dict(kwargs)},
                              self.limits.call_timeout)
        if "error" in reply:
            err = reply["error"] if type(reply["error"]) is dict else {}
            exc = remote_exception(err.get("type", "Exception"), str(err.get("message", ""))[:2000])
            _raise_from_student_line(exc, err.get("where"))
        if not {"result", "args_after", "kwargs_after", "changed_lists"} <= set(reply):
            self.dead = "the grading process's reply was incomplete"
            raise SandboxFailure(self.dead)
        _copy_back(list(args), reply["args_after"], dict(kwargs), reply["kwargs_after"], reply["changed_lists"])
        return reply["result"]


def _too_big(cells: list[tuple[int, str]], limits: Limits) -> str:
    size = sum(len(src.encode("utf-8", "replace")) for _, src in cells)
    return (f"your notebook has {len(cells)} code cells ({size / 2**20:.1f} MiB of code); the grader runs at most "
            f"{limits.max_cells} cells and {limits.message_bytes // 2**21} MiB of code, so it was not graded: "
            f"remove the cells you do not need (large data belongs in a file, not in a cell)")


def _copy_back(args: list, after: Any, kwargs: dict, kw_after: Any, changed: Any) -> None:
    """Make the caller's arguments look as the student's function left them (for in-place checks)."""
    import torch
    if type(after) is not list or len(after) != len(args) or type(kw_after) is not dict:
        return

    def leaf(mine: Any, theirs: Any) -> None:
        if type(mine) is torch.Tensor and type(theirs) is torch.Tensor:
            with torch.no_grad():
                if mine.shape == theirs.shape and mine.dtype == theirs.dtype:
                    if not torch.equal(mine, theirs):
                        mine.copy_(theirs)
                else:
                    mine.data = theirs
        elif type(mine) in (list, tuple) and type(theirs) in (list, tuple):
            for a, b in zip(mine, theirs):
                leaf(a, b)

    for a, b in zip(args, after):
        leaf(a, b)
    for k, v in kwargs.items():
        if k in kw_after:
            leaf(v, kw_after[k])
    for path in changed if type(changed) is list else []:
        mine, theirs = _at(args, kwargs, path), _at(after, kw_after, path)
        if type(mine) is list and type(theirs) is list:
            mine[:] = [t.clone() if isinstance(t, torch.Tensor) else t for t in theirs]


def _at(args: Any, kwargs: Any, path: Any) -> Any:
    if type(path) is not list:
        return None
    node = args
    if path and path[0] == "kw":
        node, path = kwargs, path[1:]
    for p in path:
        try:
            node = node[p]
        except (IndexError, KeyError, TypeError):
            return None
    return node


_KINDS = {"positional_only": inspect.Parameter.POSITIONAL_ONLY,
          "positional_or_keyword": inspect.Parameter.POSITIONAL_OR_KEYWORD,
          "var_positional": inspect.Parameter.VAR_POSITIONAL,
          "keyword_only": inspect.Parameter.KEYWORD_ONLY,
          "var_keyword": inspect.Parameter.VAR_KEYWORD}


def _signature(params: Any) -> inspect.Signature | None:
    if type(params) is not list:
        return None
    try:
        return inspect.Signature([inspect.Parameter(name, _KINDS[kind],
                                                    default=None if has_default else inspect.Parameter.empty)
                                  for name, kind, has_default in params])
    except (ValueError, TypeError, KeyError):
        return None


class RemoteFunction:
    """Stands in for the student's function ``name``; calling it runs the function in the worker."""

    def __init__(self, worker: Worker, name: str, params: Any = None):
        self._worker = worker
        self.__name__ = self.__qualname__ = name
        sig = _signature(params)
        if sig is not None:
            self.__signature__ = sig

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._worker.call(self.__name__, args, kwargs)

    def __repr__(self) -> str:
        return f"<function {self.__name__} (in the sandbox)>"
