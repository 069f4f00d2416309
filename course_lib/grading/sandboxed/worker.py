"""Runs in the sandbox, as the student: the worker, the process that runs the student's cells.

The zygote (:mod:`.zygote`) forks it and :func:`run_worker` contains it (:mod:`.isolation`). Its
channel to the grader (:mod:`..grader.worker`, the other end) carries :mod:`..protocol` messages
(plain data): first the notebook's code cells, which it runs one by one in an IPython shell
(reporting each cell's start and exception, if any), then requests to describe or call a name the
notebook defined. Its stdout and stderr go to ``/dev/null`` before any student code runs, so
nothing the student prints can reach the channel. The worker never decides a grade: it only sends
back what the student's function returned.
"""
from __future__ import annotations

import inspect
import os
import signal
import traceback
from typing import Any

from .. import protocol
from ..limits import Limits
from . import forbid, isolation

__all__ = ["run_worker", "worker_main"]


def run_worker(fd: int, cgroup_fds: list[int], status_fd: int | None, limits: Limits, scratch: str,
                  uid: int | None, zygote_pid: int, fresh_tmp: list[str] = ()) -> None:
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        parent = isolation.contain(fd, cgroup_fds, status_fd, zygote_pid, fresh_tmp, limits.tmp_bytes)  # the worker returns
        isolation.enter_worker(limits, scratch, uid, parent)
        null = os.open(os.devnull, os.O_RDWR)
        for std in (0, 1, 2):
            os.dup2(null, std)
        os.close(null)
        worker_main(fd, limits)
    except BaseException as exc:  # noqa: BLE001 - tell the trusted side why, then end
        try:
            protocol.send(fd, protocol.encode({protocol.FATAL: f"{type(exc).__name__}: {exc}"[:2000]}))
        except BaseException:  # noqa: BLE001
            pass
    finally:
        os._exit(0)


# ----------------------------------------------------------------------------- the worker

def _text(exc: BaseException, limit: int = 2000) -> str:
    """``str(exc)``, cut to ``limit`` characters; a broken ``__str__`` gives ''."""
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001
        return ""
    return text if type(text) is str and len(text) <= limit else (str.__getitem__(text, slice(0, limit)) + "…"
                                                                  if type(text) is str else "")


def _exc_name(exc: BaseException) -> str:
    name = getattr(type(exc), "__name__", "Exception")
    return name if type(name) is str and name.isidentifier() else "Exception"


def _where(exc: BaseException) -> list | None:
    """[line, function, source line] of the innermost frame in the student's own cells."""
    try:
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if f.filename.startswith("<ipython-input-") or f.filename.startswith("<cell")]
        if not frames:
            return None
        f = frames[-1]
        return [int(f.lineno or 0), str(f.name)[:80], (f.line or "").strip()[:200]]
    except BaseException:  # noqa: BLE001
        return None


def _error(exc: BaseException) -> dict:
    return {"type": _exc_name(exc), "message": _text(exc), "where": _where(exc)}


def _shell():
    """An IPython shell that runs cells and formats no tracebacks: the worker sends only the exception's name
    and message (``run_cell``'s result has the exception before the shell would show it), and IPython's
    traceback of an error raised deep inside torch costs ~0.5 s of reading source files, for /dev/null."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config
    cfg = Config()
    cfg.HistoryManager.enabled = False
    cfg.InteractiveShell.colors = "nocolor"
    shell = InteractiveShell(config=cfg)
    shell.showtraceback = shell.showsyntaxerror = _no_traceback
    return shell


def _no_traceback(*args: Any, **kwargs: Any) -> None:
    return None


def _send(fd: int, message: Any, limits: Limits) -> None:
    try:
        body = protocol.encode(message, limits.wire())
    except protocol.ProtocolError as exc:
        body = protocol.encode({protocol.FATAL: f"the reply could not be sent: {exc}"})
    protocol.send(fd, body)


def _lists(value: Any, path: tuple = ()) -> list[tuple[tuple, list, list[int]]]:
    """Every list inside ``value`` with its path and the ids of its items (to see if they were replaced)."""
    out = []
    if type(value) is list:
        out.append((path, value, [id(v) for v in value]))
    if type(value) in (list, tuple):
        for i, v in enumerate(value):
            out += _lists(v, path + (i,))
    elif type(value) is dict:
        for k, v in value.items():
            out += _lists(v, path + (k,))
    return out


def worker_main(fd: int, limits: Limits) -> None:
    """Run the cells the trusted side sends, then serve ``describe``/``call`` requests until told to stop."""
    init = protocol.decode(protocol.recv(fd, limits.cells_wire()), limits.cells_wire())
    forbid.install(list(init.get(protocol.FORBID) or []))      # before any of the student's code: see .forbid
    shell = _shell()
    for index, source in init[protocol.CELLS]:
        _send(fd, {protocol.EVENT: protocol.EVENT_CELL, "index": index}, limits)
        error = None
        try:
            result = shell.run_cell(source, store_history=False)
            exc = result.error_before_exec or result.error_in_exec
            if exc is not None:
                error = [_exc_name(exc), _text(exc, 500)]
        except BaseException as exc:  # noqa: BLE001 - the shell itself was broken by the cell
            error = [_exc_name(exc), _text(exc, 500)]
        _send(fd, {protocol.EVENT: protocol.EVENT_CELL_DONE, "index": index, "error": error}, limits)
    forbid.arm(fd)                                       # from here a forbidden call ends the worker
    _send(fd, {protocol.EVENT: protocol.EVENT_READY}, limits)
    namespace = shell.user_ns
    while True:
        req = protocol.decode(protocol.recv(fd, limits.wire()), limits.wire())
        op, rid = req.get("op"), req.get("id")
        if op == protocol.OP_DESCRIBE:
            _send(fd, {"id": rid, **_describe(namespace, req["name"])}, limits)
        elif op == protocol.OP_CALL:
            _send(fd, {"id": rid, **_call(namespace, req["name"], req["args"], req["kwargs"])}, limits)
        else:
            return


def _describe(namespace: dict, name: str) -> dict:
    if name not in namespace:
        return {"defined": False}
    obj = namespace[name]
    try:
        is_callable = callable(obj)
    except BaseException:  # noqa: BLE001
        is_callable = False
    if not is_callable:
        return {"defined": True, "callable": False, "value": obj}
    try:
        sig = inspect.signature(obj)
        params = [[str(p.name), protocol.PARAM_KINDS[p.kind], p.default is not inspect.Parameter.empty]
                  for p in sig.parameters.values()]
    except BaseException:  # noqa: BLE001 - no signature: the checker will just call it
        params = None
    return {"defined": True, "callable": True, "params": params}


def _call(namespace: dict, name: str, args: list, kwargs: dict) -> dict:
    fn = namespace.get(name)
    if fn is None:
        return {"error": {"type": "NameError", "message": f"name '{name}' is not defined", "where": None}}
    lists = _lists(args) + _lists(kwargs, ("kw",))
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are the student's too
        return {"error": _error(exc)}
    changed = [list(path) for path, lst, ids in lists
               if len(lst) != len(ids) or any(id(v) != i for v, i in zip(lst, ids))]
    return {"result": result, "args_after": list(args), "kwargs_after": dict(kwargs), "changed_lists": changed}


