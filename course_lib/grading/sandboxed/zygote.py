"""Runs in the sandbox: the zygote, which forks one worker per graded part and never runs student code.

``python -I -m course_lib.grading.sandboxed.zygote --zygote FD`` is started by
:class:`..grader.zygote.Zygote` with a ``SOCK_SEQPACKET`` control socket on ``FD``. The zygote isolates
itself (:func:`.isolation.isolate`), imports the heavy modules once, and then answers JSON requests
(the names are :mod:`..protocol`'s ``ZYGOTE_*``):

    {"op": "spawn", "uid": u} + a socket and    fork a worker that talks on that socket, runs as uid u and
      the cgroups' cgroup.procs passed along    joins those cgroups (:func:`.isolation.contain`) -> {"pid": ...}
    {"op": "variant", "forbid": [...]}          fork a variant: a zygote with those operations switched off
      + a new control socket                    (:mod:`.forbid`), answering on that socket    -> {"pid": ...}
    {"op": "status", "pid": p, "wait": s}       the worker's wait status once it ended  -> {"status": ...},
                                                with "outside": true if its init was killed before it
    {"op": "cleanup", "pid": p}                 kill and reap everything left, wipe the private /tmp
    {"op": "preload", "modules": [...]}         import more modules before forking (e.g. keras)

The worker itself is :mod:`.worker`.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time

from .. import protocol
from ..limits import Limits
from . import forbid, isolation
from .worker import run_worker

__all__ = ["zygote_main"]


# ----------------------------------------------------------------------------- the zygote

def zygote_main(fd: int) -> None:
    """Isolate, preload, then fork workers (or variants, see :class:`_Server`) on request until the trusted
    side closes the socket."""
    sock = socket.socket(fileno=fd)
    config = json.loads(sock.recv(1 << 20))
    limits = Limits(**config["limits"])
    lines, private_tmp = isolation.isolate(config["hide"], config["keep"], limits,
                                         os.path.join(config["zygote_dir"], "root"))
    os.chdir("/")
    isolation.prctl(isolation.PR_SET_CHILD_SUBREAPER, 1)
    isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != config["parent_pid"]:
        os._exit(0)
    if os.geteuid() != 0:
        isolation.prctl(isolation.PR_SET_DUMPABLE, 0)     # a worker of the same user cannot ptrace the zygote
    scratch = "/tmp" if private_tmp else config["zygote_dir"]
    namespaces = False
    if os.geteuid() == 0 and private_tmp:
        namespaces, line = isolation.probe_namespaces()
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

    def __init__(self, limits: Limits, scratch: str, private_tmp: bool, namespaces: bool, keep: list[str]):
        self.limits, self.scratch, self.private_tmp, self.namespaces, self.keep = \
            limits, scratch, private_tmp, namespaces, keep
        self.fresh_tmp = isolation.fresh_tmp_dirs(keep) if namespaces else []

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
            if op == protocol.ZYGOTE_SPAWN:
                read, write = os.pipe() if self.namespaces else (None, None)
                if self.namespaces:
                    isolation.new_pid_namespace_for_children()    # the child is init of a new PID namespace
                try:
                    pid = os.fork()
                finally:
                    if self.namespaces and os.getpid() == me:
                        isolation.same_pid_namespace_for_children()
                if pid == 0:
                    sock.close()
                    for r in [*reports.values(), *([read] if read is not None else [])]:
                        os.close(r)
                    run_worker(fds[0], fds[1:], write, self.limits, self.scratch, req.get("uid"), me,
                                  self.fresh_tmp)                                             # never returns
                for f in fds:
                    os.close(f)
                if write is not None:
                    os.close(write)
                    reports[pid] = read
                _reply(sock, {"pid": pid})
            elif op == protocol.ZYGOTE_VARIANT:
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
            elif op == protocol.ZYGOTE_STATUS:
                pid, wait = int(req["pid"]), float(req.get("wait", 0))
                if pid in reports:
                    _reply(sock, _reported(reports[pid], wait))
                else:
                    _reply(sock, {"status": _wait_for(pid, wait, statuses)})
            elif op == protocol.ZYGOTE_CLEANUP:
                _kill_descendants(statuses, spare=variants)
                _wipe(self.scratch, self.private_tmp, int(req["pid"]), self.keep, self.limits.tmp_bytes,
                      self.fresh_tmp)
                statuses.clear()
                for r in reports.values():
                    os.close(r)
                reports.clear()
                _reply(sock, {})
            elif op == protocol.ZYGOTE_PRELOAD:
                _reply(sock, {"errors": _preload(req.get("modules", []))})
            else:
                _reply(sock, {"error": f"unknown request {op!r}"})

    def _variant(self, fd: int, forbidden: list[str], parent: int) -> None:
        sock = socket.socket(fileno=fd)
        try:
            isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:
                os._exit(0)
            isolation.prctl(isolation.PR_SET_CHILD_SUBREAPER, 1)
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
    data = os.read(read, isolation.STATUS.size)
    if len(data) == isolation.STATUS.size:
        return {"status": isolation.STATUS.unpack(data)[0]}
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
    had a tmpfs of its own on (:func:`.isolation.contain`), gone with its namespace: nothing to do there.

    Entries on the way to a kept path (a course cloned under /tmp is bound read-only inside the
    private /tmp) are left alone.
    """
    targets = [d for d in isolation.WORLD_WRITABLE if os.path.isdir(d) and d not in fresh] if private_tmp \
        else [scratch]
    for d in targets:
        if private_tmp and tmp_bytes and os.path.ismount(d) and \
                not any(isolation.under(os.path.realpath(k), [d]) for k in keep):
            try:                                        # a fresh tmpfs: instant, however deep the old tree
                isolation.fresh_tmpfs(d, tmp_bytes)
                continue
            except OSError:
                pass
        for name in os.listdir(d):
            if not private_tmp and not name.startswith(f"w{pid}-"):
                continue
            path = os.path.join(d, name)
            if any(isolation.under(os.path.realpath(k), [path]) for k in keep):
                continue
            isolation.remove_tree(path)


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "--zygote":
        zygote_main(int(argv[1]))
    else:
        sys.exit("usage: python -I -m course_lib.grading.sandboxed.zygote --zygote FD (started by "
                 "course_lib.grading.grader.zygote)")


if __name__ == "__main__":
    main(sys.argv[1:])
