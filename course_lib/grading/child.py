"""The untrusted side: a zygote that forks one worker per graded part; the worker runs the student's cells.

``python -I -m course_lib.grading.child --zygote FD`` is started by :class:`.sandbox.Zygote` with a
``SOCK_SEQPACKET`` control socket on ``FD``. The zygote isolates itself (:func:`.sandbox.isolate`),
imports the heavy modules once, and then answers JSON requests:

    {"op": "spawn", "uid": u} + a socket and    fork a worker that talks on that socket, runs as uid u and
      the cgroups' cgroup.procs passed along    joins those cgroups (:func:`.sandbox.contain`) -> {"pid": ...}
    {"op": "status", "pid": p, "wait": s}       the worker's wait status once it ended  -> {"status": ...},
                                                with "outside": true if its init was killed before it
    {"op": "cleanup", "pid": p}                 kill and reap everything left, wipe the private /tmp
    {"op": "preload", "modules": [...]}         import more modules before forking (e.g. keras)

A worker (:func:`worker_main`) is the student's process. Its channel carries :mod:`.protocol`
messages (plain data): first the notebook's code cells, which it runs one by one in an IPython shell
(reporting each cell's start and exception, if any), then requests to describe or call a name the
notebook defined. Its stdout and stderr go to ``/dev/null`` before any student code runs, so
nothing the student prints can reach the channel. The worker never decides a grade: it only sends
back what the student's function returned.
"""
from __future__ import annotations

import inspect
import json
import os
import signal
import socket
import sys
import time
import traceback
from typing import Any

from . import forbid, protocol, sandbox

PARAM_KINDS = {inspect.Parameter.POSITIONAL_ONLY: "positional_only",
               inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional_or_keyword",
               inspect.Parameter.VAR_POSITIONAL: "var_positional",
               inspect.Parameter.KEYWORD_ONLY: "keyword_only",
               inspect.Parameter.VAR_KEYWORD: "var_keyword"}


# ----------------------------------------------------------------------------- the zygote

def zygote_main(fd: int) -> None:
    """Isolate, preload, then fork workers (or variants, see :class:`_Server`) on request until the trusted
    side closes the socket."""
    sock = socket.socket(fileno=fd)
    config = json.loads(sock.recv(1 << 20))
    limits = sandbox.Limits(**config["limits"])
    lines, private_tmp = sandbox.isolate(config["hide"], config["keep"], limits,
                                         os.path.join(config["zygote_dir"], "root"))
    os.chdir("/")
    sandbox.prctl(sandbox.PR_SET_CHILD_SUBREAPER, 1)
    sandbox.prctl(sandbox.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != config["parent_pid"]:
        os._exit(0)
    if os.geteuid() != 0:
        sandbox.prctl(sandbox.PR_SET_DUMPABLE, 0)     # a worker of the same user cannot ptrace the zygote
    scratch = "/tmp" if private_tmp else config["zygote_dir"]
    namespaces = False
    if os.geteuid() == 0 and private_tmp:
        namespaces, line = sandbox.probe_namespaces()
        lines.append(line or "each worker: its own PID, IPC and mount namespaces with a fresh /proc and its own "
                             "empty /tmp; its init ends everything in them")
    errors = _preload(config["preload"])
    lines += [f"could not preload {m}: {e}" for m, e in errors.items()]
    server = _Server(limits, scratch, private_tmp, namespaces, config["keep"])
    _reply(sock, {"log": lines})
    server.serve(sock)


class _Server:
    """The zygote's request loop; also that of each *variant*: a child of the zygote that switched off one
    assignment's forbidden operations (:func:`.forbid.install`, ~50 ms) once, so that its workers start
    with them off instead of each paying for it. A variant never runs student code either."""

    def __init__(self, limits: sandbox.Limits, scratch: str, private_tmp: bool, namespaces: bool, keep: list[str]):
        self.limits, self.scratch, self.private_tmp, self.namespaces, self.keep = \
            limits, scratch, private_tmp, namespaces, keep
        self.fresh_tmp = sandbox.fresh_tmp_dirs(keep) if namespaces else []

    def serve(self, sock: socket.socket) -> None:
        statuses: dict[int, int] = {}
        reports: dict[int, int] = {}             # worker pid -> read end of its init's status pipe
        variants: set[int] = set()
        me = os.getpid()
        while True:
            try:
                msg, fds, _, _ = socket.recv_fds(sock, 1 << 20, 8)
            except OSError:
                msg, fds = b"", []
            if not msg:
                _kill_descendants(statuses)
                os._exit(0)
            req = json.loads(msg)
            op = req.get("op")
            if op == "spawn":
                read, write = os.pipe() if self.namespaces else (None, None)
                if self.namespaces:
                    sandbox.new_pid_namespace_for_children()    # the child is init of a new PID namespace
                try:
                    pid = os.fork()
                finally:
                    if self.namespaces and os.getpid() == me:
                        sandbox.same_pid_namespace_for_children()
                if pid == 0:
                    sock.close()
                    for r in [*reports.values(), *([read] if read is not None else [])]:
                        os.close(r)
                    _worker_entry(fds[0], fds[1:], write, self.limits, self.scratch, req.get("uid"), me,
                                  self.fresh_tmp)                                             # never returns
                for f in fds:
                    os.close(f)
                if write is not None:
                    os.close(write)
                    reports[pid] = read
                _reply(sock, {"pid": pid})
            elif op == "variant":
                pid = os.fork()
                if pid == 0:
                    sock.close()
                    for r in reports.values():
                        os.close(r)
                    self._variant(fds[0], list(req.get("forbid") or []), me)                # never returns
                for f in fds:
                    os.close(f)
                variants.add(pid)
                _reply(sock, {"pid": pid})
            elif op == "status":
                pid, wait = int(req["pid"]), float(req.get("wait", 0))
                if pid in reports:
                    _reply(sock, _reported(reports[pid], wait))
                else:
                    _reply(sock, {"status": _wait_for(pid, wait, statuses)})
            elif op == "cleanup":
                _kill_descendants(statuses, spare=variants)
                _wipe(self.scratch, self.private_tmp, int(req["pid"]), self.keep, self.limits.tmp_bytes,
                      self.fresh_tmp)
                statuses.clear()
                for r in reports.values():
                    os.close(r)
                reports.clear()
                _reply(sock, {})
            elif op == "preload":
                _reply(sock, {"errors": _preload(req.get("modules", []))})
            else:
                _reply(sock, {"error": f"unknown request {op!r}"})

    def _variant(self, fd: int, forbidden: list[str], parent: int) -> None:
        sock = socket.socket(fileno=fd)
        try:
            sandbox.prctl(sandbox.PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:
                os._exit(0)
            sandbox.prctl(sandbox.PR_SET_CHILD_SUBREAPER, 1)
            forbid.install(forbidden)
        except BaseException as exc:  # noqa: BLE001 - the trusted side is told; its workers would fail alike
            _reply(sock, {"error": f"{type(exc).__name__}: {exc}"[:2000]})
            os._exit(0)
        _reply(sock, {})
        self.serve(sock)


def _reply(sock: socket.socket, message: dict) -> None:
    sock.send(json.dumps(message).encode())


def _preload(modules: list[str]) -> dict[str, str]:
    import importlib
    errors = {}
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - reported to the trusted side's log
            errors[name] = f"{type(exc).__name__}: {exc}"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    return errors


def _reported(read: int, wait: float) -> dict:
    """The worker's status as its namespace's init wrote it; nothing written and the pipe closed means init
    was killed first: from outside, never by the student's code."""
    import select
    ready, _, _ = select.select([read], [], [], wait)
    if not ready:
        return {"status": None}
    data = os.read(read, sandbox._STATUS.size)
    if len(data) == sandbox._STATUS.size:
        return {"status": sandbox._STATUS.unpack(data)[0]}
    return {"status": None, "outside": True}


def _children() -> list[int]:
    me, out = str(os.getpid()), []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if stat[stat.rfind(")") + 2:].split()[1] == me:      # field 4: the parent's pid
                out.append(int(pid))
    return out


def _wait_for(pid: int, wait: float, statuses: dict[int, int]) -> int | None:
    deadline = time.monotonic() + wait
    while True:
        if pid in statuses:
            return statuses[pid]
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return statuses.get(pid)
        if got:
            statuses[pid] = status
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def _kill_descendants(statuses: dict[int, int], spare: set[int] = frozenset()) -> None:
    """SIGKILL every child but ``spare`` (orphans of killed workers are re-parented here: we are a subreaper)
    and reap; a ``spare`` child that has ended is reaped and dropped from it."""
    for pid in list(spare):
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                spare.discard(pid)
        except ChildProcessError:
            spare.discard(pid)
    for _ in range(1000):
        kids = [k for k in _children() if k not in spare]
        if not kids:
            break
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in kids:
            try:
                _, status = os.waitpid(pid, 0)
                statuses[pid] = status
            except ChildProcessError:
                pass


def _wipe(scratch: str, private_tmp: bool, pid: int, keep: list[str] = (), tmp_bytes: int = 0,
          fresh: list[str] = ()) -> None:
    """Empty the private tmpfs mounts (only when they are ours: a fresh tmpfs replaces each) or at least the
    worker's scratch directory (removed without recursion, however deep). ``fresh`` are those each worker
    had a tmpfs of its own on (:func:`.sandbox.contain`), gone with its namespace: nothing to do there.

    Entries on the way to a kept path (a course cloned under /tmp is bound read-only inside the
    private /tmp) are left alone.
    """
    targets = [d for d in sandbox.WORLD_WRITABLE if os.path.isdir(d) and d not in fresh] if private_tmp \
        else [scratch]
    for d in targets:
        if private_tmp and tmp_bytes and os.path.ismount(d) and \
                not any(sandbox._under(os.path.realpath(k), [d]) for k in keep):
            try:                                        # a fresh tmpfs: instant, however deep the old tree
                sandbox.fresh_tmpfs(d, tmp_bytes)
                continue
            except OSError:
                pass
        for name in os.listdir(d):
            if not private_tmp and not name.startswith(f"w{pid}-"):
                continue
            path = os.path.join(d, name)
            if any(sandbox._under(os.path.realpath(k), [path]) for k in keep):
                continue
            sandbox.remove_tree(path)


def _worker_entry(fd: int, cgroup_fds: list[int], status_fd: int | None, limits: sandbox.Limits, scratch: str,
                  uid: int | None, zygote_pid: int, fresh_tmp: list[str] = ()) -> None:
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        parent = sandbox.contain(fd, cgroup_fds, status_fd, zygote_pid, fresh_tmp, limits.tmp_bytes)  # the worker returns
        sandbox.enter_worker(limits, scratch, uid, parent)
        null = os.open(os.devnull, os.O_RDWR)
        for std in (0, 1, 2):
            os.dup2(null, std)
        os.close(null)
        worker_main(fd, limits)
    except BaseException as exc:  # noqa: BLE001 - tell the trusted side why, then end
        try:
            protocol.send(fd, protocol.encode({"fatal": f"{type(exc).__name__}: {exc}"[:2000]}))
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


_SKIP_PREFIXES = tuple(p for p in (os.path.dirname(os.path.dirname(__file__)) + os.sep,) if p)


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
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config
    cfg = Config()
    cfg.HistoryManager.enabled = False
    cfg.InteractiveShell.colors = "nocolor"
    return InteractiveShell(config=cfg)


def _send(fd: int, message: Any, limits: sandbox.Limits) -> None:
    try:
        body = protocol.encode(message, limits.wire())
    except protocol.ProtocolError as exc:
        body = protocol.encode({"fatal": f"the reply could not be sent: {exc}"})
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


def worker_main(fd: int, limits: sandbox.Limits) -> None:
    """Run the cells the trusted side sends, then serve ``describe``/``call`` requests until told to stop."""
    init = protocol.decode(protocol.recv(fd, limits.cells_wire()), limits.cells_wire())
    forbid.install(list(init.get("forbid") or []))      # before any of the student's code: see .forbid
    shell = _shell()
    for index, source in init["cells"]:
        _send(fd, {"event": "cell", "index": index}, limits)
        error = None
        try:
            result = shell.run_cell(source, store_history=False)
            exc = result.error_before_exec or result.error_in_exec
            if exc is not None:
                error = [_exc_name(exc), _text(exc, 500)]
        except BaseException as exc:  # noqa: BLE001 - the shell itself was broken by the cell
            error = [_exc_name(exc), _text(exc, 500)]
        _send(fd, {"event": "cell_done", "index": index, "error": error}, limits)
    forbid.arm(fd)                                       # from here a forbidden call ends the worker
    _send(fd, {"event": "ready"}, limits)
    namespace = shell.user_ns
    while True:
        req = protocol.decode(protocol.recv(fd, limits.wire()), limits.wire())
        op, rid = req.get("op"), req.get("id")
        if op == "describe":
            _send(fd, {"id": rid, **_describe(namespace, req["name"])}, limits)
        elif op == "call":
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
        params = [[str(p.name), PARAM_KINDS[p.kind], p.default is not inspect.Parameter.empty]
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


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "--zygote":
        zygote_main(int(argv[1]))
    else:
        sys.exit("usage: python -I -m course_lib.grading.child --zygote FD (started by course_lib.grading.sandbox)")


if __name__ == "__main__":
    main(sys.argv[1:])
