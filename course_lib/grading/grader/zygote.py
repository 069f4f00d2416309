"""The grader's handle on the sandbox: start the zygote, fork workers from it, clean up after them.

:class:`Zygote` starts ``python -I -m course_lib.grading.sandboxed.zygote`` (:mod:`..sandboxed.zygote`)
and talks to it on a control socket (the operations of :mod:`..protocol`); as root each worker it
asks for gets a :class:`Lease`: a user id no other live sandbox on the machine holds
(:func:`take_uid`) and its own memory and pids cgroups, killed whole and removed when the part ends.
Nothing here runs the student's code.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

from .. import protocol
from ..limits import Limits
from ..sandboxed.isolation import SandboxError, minimal_env, remove_tree

__all__ = ["Zygote", "SandboxError", "Exit", "Lease", "describe_exit", "python_paths", "default_hidden", "take_uid",
           "cgroups_available"]

log = logging.getLogger(__name__)


def python_paths() -> list[str]:
    """What a worker must be able to read to run Python: the interpreter's prefixes, site-packages, course_lib."""
    import site
    import course_lib
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.abspath(course_lib.__file__)), *site.getsitepackages()}
    paths = {q for p in paths if p and os.path.exists(p) for q in (os.path.abspath(p), os.path.realpath(p))}
    return sorted(paths)


def default_hidden() -> list[str]:
    """Paths student code never needs: the grading user's home (credentials, caches) where that is not ``/``."""
    home = os.path.realpath(os.path.expanduser("~"))
    return [home] if home != "/" and os.path.isdir(home) else []


@dataclass(frozen=True)
class Exit:
    """How a worker ended: its ``waitpid`` status (None: unknown yet), and whether it was ended from outside
    its own code (its sandbox's init or the zygote was killed: the host or the grader, never the student)
    or by its memory cgroup's limit."""

    status: int | None = None
    outside: bool = False
    memory: bool = False


def describe_exit(status: int | None, memory_limit: int | None = None) -> str:
    """``"exited with code 3"`` / ``"killed by SIGKILL"`` from a ``waitpid`` status."""
    if status is None:
        return "ended"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        why = {"SIGXCPU": " (the CPU time limit)", "SIGXFSZ": " (the file size limit)"}.get(name, "")
        if memory_limit and name == "SIGKILL":
            why = f" (the memory limit of {memory_limit // 2**20} MiB, shared memory included)"
        return f"killed by {name}{why}"
    if os.WIFEXITED(status):
        return f"exited with code {os.WEXITSTATUS(status)}"
    return f"ended (status {status})"


# ----------------------------------------------------------------------------- the trusted side: uid and cgroups

def _lock_dir() -> str:
    """Where the uid locks of every grading run on this machine live (root-only)."""
    base = "/run/lock" if os.path.isdir("/run/lock") else "/tmp"
    path = os.path.join(base, "course_lib-sandbox-uids")
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if not os.path.isdir(path) or os.path.islink(path) or st.st_uid != 0 or st.st_mode & 0o022:
        raise SandboxError(f"{path} must be a directory owned by root and writable only by root (remove it)")
    return path


def take_uid(limits: Limits) -> tuple[int, int]:
    """A user id no other live sandbox on this machine holds, and the locked file descriptor that holds it.

    One lock file per uid under ``/run/lock/course_lib-sandbox-uids``; the lock lasts until the
    descriptor is closed (or the grader dies). Processes still running under the uid (left by a run
    killed before it could clean up) are killed before it is handed out.
    """
    folder = _lock_dir()
    for uid in range(limits.uid_base, limits.uid_base + limits.uid_count):
        fd = os.open(os.path.join(folder, str(uid)), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _kill_uid(uid)
        return uid, fd
    raise SandboxError(f"all {limits.uid_count} sandbox user ids from {limits.uid_base} are in use on this machine")


def _kill_uid(uid: int) -> int:
    """SIGKILL every process of ``uid`` until none is left; returns how many were found."""
    found = 0
    for _ in range(100):
        pids = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    if os.stat(f"/proc/{pid}").st_uid == uid:
                        pids.append(int(pid))
                except OSError:
                    pass
        if not pids:
            break
        found += len(pids)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)
    return found


CGROUP_ROOT = "/sys/fs/cgroup"


def _cgroup_dirs() -> dict[str, str]:
    """This process's memory and pids cgroups (v1), where the sandboxes' cgroups go: {controller: dir}."""
    own = {}
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for c in controllers.split(","):
                    own[c] = path
    except OSError:
        return {}
    out = {}
    for c in ("memory", "pids"):
        d = os.path.join(CGROUP_ROOT, c) + own.get(c, "/").rstrip("/")
        if c in own and os.path.isfile(os.path.join(d, "cgroup.procs")):
            out[c] = d
    return out


def cgroups_available() -> tuple[bool, str | None]:
    """Whether this grader can give each sandbox a memory and pids cgroup; else the log line saying so."""
    if os.geteuid() != 0:
        return False, ("NOT PROTECTED: not root, so no cgroup per sandbox: memory (shared memory included) is "
                       "bounded only per process")
    dirs = _cgroup_dirs()
    if set(dirs) != {"memory", "pids"}:
        return False, ("NOT PROTECTED: no writable cgroup v1 memory and pids controllers (cgroup v2 is not "
                       "supported yet): memory (shared memory included) is bounded only per process")
    probe = os.path.join(dirs["pids"], f"course_lib-probe-{os.getpid()}")
    try:
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError as exc:
        return False, (f"NOT PROTECTED: cannot create cgroups ({exc.strerror}): memory (shared memory included) "
                       f"is bounded only per process")
    return True, None


class Lease:
    """What one live worker holds on the trusted side: its own uid (a lock) and its memory and pids cgroups."""

    def __init__(self, limits: Limits, cgroups: bool):
        self.limits = limits
        self.uid, self._lock = take_uid(limits)
        self.cgroups: list[str] = []
        self.procs_fds: list[int] = []
        if cgroups:
            try:
                self._make_cgroups()
            except OSError as exc:
                log.warning("sandbox: no cgroup for uid %s (%s); memory is bounded only per process", self.uid, exc)
                self.close_procs_fds()
                self._remove_cgroups()

    def _make_cgroups(self) -> None:
        for controller, parent in sorted(_cgroup_dirs().items()):
            path = os.path.join(parent, f"course_lib-sandbox-{self.uid}")
            if os.path.isdir(path):                    # left by a run that was killed: start afresh
                _remove_cgroup(path)
            if not os.path.isdir(path):
                os.mkdir(path)
            self.cgroups.append(path)
            if controller == "memory":
                _write(path, "memory.limit_in_bytes", self.limits.resident_bytes)
                if os.path.exists(os.path.join(path, "memory.memsw.limit_in_bytes")):
                    _write(path, "memory.memsw.limit_in_bytes", self.limits.resident_bytes)   # no swapping out
            else:
                _write(path, "pids.max", self.limits.processes + 1)                          # + init
            self.procs_fds.append(os.open(os.path.join(path, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC))

    def close_procs_fds(self) -> None:
        for fd in self.procs_fds:
            os.close(fd)
        self.procs_fds = []

    def oom_killed(self) -> bool:
        """Whether the memory cgroup's limit killed a process of this worker."""
        for path in self.cgroups:
            try:
                with open(os.path.join(path, "memory.oom_control")) as f:
                    if any(line.split()[0] == "oom_kill" and int(line.split()[1]) > 0 for line in f):
                        return True
            except (OSError, ValueError, IndexError):
                pass
        return False

    def _remove_cgroups(self) -> None:
        for path in self.cgroups:
            _remove_cgroup(path)
        self.cgroups = []

    def release(self) -> None:
        """Kill whatever is left in the cgroups and under the uid, remove the cgroups, give the uid back."""
        self.close_procs_fds()
        self._remove_cgroups()
        _kill_uid(self.uid)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def _kill_cgroup(path: str) -> None:
    """SIGKILL every task of the cgroup at ``path`` until it has none (processes forking meanwhile too)."""
    for _ in range(200):
        try:
            with open(os.path.join(path, "cgroup.procs")) as f:
                pids = [int(p) for p in f.read().split()]
        except OSError:
            return
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.005)


def _remove_cgroup(path: str) -> None:
    """Kill every task of a cgroup and remove it (waiting a little for the last ones to be reaped)."""
    _kill_cgroup(path)
    for _ in range(100):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                return
            time.sleep(0.005)


def _write(folder: str, name: str, value: int) -> None:
    with open(os.path.join(folder, name), "w") as f:
        f.write(str(value))


# ----------------------------------------------------------------------------- the trusted side's handle

@dataclass
class _Config:
    limits: dict
    hide: list[str]
    keep: list[str]
    preload: list[str]
    parent_pid: int
    zygote_dir: str = ""


class Zygote:
    """The trusted side's handle on the zygote: start it, fork workers from it, clean up after them.

    ``hide`` are paths the student's code must not see (the course directory, the gradebook);
    ``keep`` are paths under them it needs (the virtual environment, ``course_lib``).
    """

    def __init__(self, limits: Limits = Limits(), *, hide: list[str] = (), keep: list[str] = (),
                 preload: list[str] = ("numpy", "torch", "IPython.core.interactiveshell"), start_timeout: float = 300):
        self.limits, self.hide, self.keep = limits, list(hide), list(keep)
        self.preload = list(preload)
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.report: list[str] = []
        self._dir: str | None = None
        self._stderr = None
        self._leases: dict[int, Lease] = {}
        self._cgroups = False
        self._variants: dict[tuple[str, ...], socket.socket] = {}   # forbidden operations -> its variant's channel
        self._owner: dict[int, socket.socket] = {}                  # worker pid -> the channel that forked it

    # -- lifecycle
    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.close()
        self._dir = tempfile.mkdtemp(prefix="trusted-grading-")
        os.chmod(self._dir, 0o755)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._stderr = open(os.path.join(self._dir, "zygote.log"), "w+b")
        env = minimal_env(self._dir)
        cmd = [sys.executable, "-I", "-m", "course_lib.grading.sandboxed.zygote", "--zygote", str(theirs.fileno())]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr,
                                     pass_fds=(theirs.fileno(),), start_new_session=True, env=env, cwd=self._dir)
        theirs.close()
        self.sock = ours
        config = _Config(asdict(self.limits), self.hide, self.keep, self.preload, os.getpid(), self._dir)
        try:
            reply = self._request(asdict(config), timeout=self.start_timeout)
        except SandboxError:
            self.close()
            raise
        self.report = list(reply.get("log", []))
        self._cgroups, line = cgroups_available()
        if line:
            log.warning("sandbox: %s", line)
            self.report.append(line)
        elif os.geteuid() == 0:
            self.report.append(f"each worker: its own uid (from {self.limits.uid_base}) and cgroups (memory "
                               f"{self.limits.resident_bytes // 2**20} MiB with shared memory, "
                               f"{self.limits.processes} tasks), killed whole and removed at the part's end")

    def close(self) -> None:
        for channel in self._variants.values():
            channel.close()
        self._variants.clear()
        self._owner.clear()
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            self.proc.wait()
            self.proc = None
        for lease in self._leases.values():
            lease.release()
        self._leases.clear()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._dir is not None:
            remove_tree(self._dir)
            self._dir = None

    def __enter__(self) -> "Zygote":
        if not self.alive:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- requests
    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()[-3000:].decode(errors="replace")

    def _request(self, message: dict, fds: list[int] = (), timeout: float = 30,
                 channel: socket.socket | None = None, send: bool = True) -> dict:
        """Send ``message`` (with ``fds``) on ``channel`` (default: the zygote's own) and wait for the reply;
        ``send=False`` only waits (for a variant's first word)."""
        channel = channel or self.sock
        try:
            if send:
                socket.send_fds(channel, [json.dumps(message).encode()], list(fds))
            ready, _, _ = select.select([channel], [], [], timeout)
            if not ready:
                raise TimeoutError
            packet = channel.recv(1 << 20)
            if not packet:
                raise EOFError
            reply = json.loads(packet)
        except (OSError, EOFError, TimeoutError, ValueError) as exc:
            raise SandboxError(f"the grading sandbox stopped answering ({type(exc).__name__}); its log:\n"
                               f"{self._stderr_tail()}") from None
        if "error" in reply:
            raise SandboxError(f"the grading sandbox failed: {reply['error']}")
        return reply

    def ensure(self) -> None:
        """Start (or restart) the zygote if it is not running."""
        if not self.alive:
            if self.proc is not None:
                log.warning("sandbox: the zygote ended (%s); starting a new one",
                            describe_exit(_wait_status(self.proc.returncode)))
            self.start()

    def import_modules(self, modules: list[str]) -> None:
        """Have the zygote import ``modules`` once (e.g. keras), so that workers start with them loaded."""
        self.ensure()
        self._request({"op": protocol.ZYGOTE_PRELOAD, "modules": list(modules)}, timeout=self.start_timeout)
        for channel in self._variants.values():       # forked before: the next spawn forks them again
            channel.close()
        self._variants.clear()

    def _variant(self, forbidden: list[str]) -> socket.socket:
        """The channel of the zygote's child that has ``forbidden`` switched off (and the answer key sealed)
        already; made on first use (:func:`.forbid.install` runs there once, not in every worker)."""
        key = tuple(forbidden)
        if key not in self._variants:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                self._request({"op": protocol.ZYGOTE_VARIANT, "forbid": list(key)}, fds=[theirs.fileno()])
            except BaseException:
                ours.close()
                raise
            finally:
                theirs.close()
            try:
                self._request({}, timeout=self.start_timeout, channel=ours, send=False)
            except BaseException:
                ours.close()
                raise
            self._variants[key] = ours
        return self._variants[key]

    def spawn(self, forbidden: list[str] = ()) -> tuple[int, socket.socket]:
        """Fork one worker, with ``forbidden`` switched off (:mod:`..sandboxed.forbid`); returns its pid (= its process
        group) and our end of its channel.

        As root the worker gets a uid of its own and fresh cgroups (:class:`Lease`), held until
        :meth:`finish`.
        """
        self.ensure()
        channel = self._variant(list(forbidden))
        lease = Lease(self.limits, self._cgroups) if os.geteuid() == 0 else None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            reply = self._request({"op": protocol.ZYGOTE_SPAWN, "uid": lease.uid if lease else None},
                                  fds=[theirs.fileno(), *(lease.procs_fds if lease else [])], channel=channel)
        except BaseException:
            ours.close()
            if lease is not None:
                lease.release()
            raise
        finally:
            theirs.close()
            if lease is not None:
                lease.close_procs_fds()
        pid = int(reply["pid"])
        self._owner[pid] = channel
        if lease is not None:
            self._leases[pid] = lease
        return pid, ours

    def exit_of(self, pid: int, wait: float = 2.0) -> Exit:
        """How the worker ended, if it has within ``wait`` seconds (else ``Exit(None)``).

        A dead zygote, or a worker whose namespace's init died before it, was ended from outside.
        """
        if not self.alive:
            return Exit(None, outside=True)
        try:
            reply = self._request({"op": protocol.ZYGOTE_STATUS, "pid": pid, "wait": wait}, timeout=wait + 10,
                                  channel=self._owner.get(pid))
        except SandboxError:
            return Exit(None, outside=True)
        lease = self._leases.get(pid)
        if lease is not None and lease.oom_killed():     # whichever process the OOM killer chose: the student's
            return Exit(reply.get("status") or signal.SIGKILL, memory=True)
        return Exit(reply.get("status"), bool(reply.get("outside")))

    def status(self, pid: int, wait: float = 2.0) -> int | None:
        """The worker's wait status if it has ended within ``wait`` seconds, else None."""
        return self.exit_of(pid, wait).status

    def finish(self, pid: int) -> None:
        """Kill the worker's process group and everything it left behind; wipe the private /tmp; remove its
        cgroups and give its uid back."""
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        channel = self._owner.pop(pid, None)
        if self.alive:
            try:
                self._request({"op": protocol.ZYGOTE_CLEANUP, "pid": pid}, timeout=30, channel=channel)
            except SandboxError as exc:
                log.warning("sandbox: cleanup failed, restarting the zygote: %s", exc)
                self.close()
        lease = self._leases.pop(pid, None)
        if lease is not None:
            lease.release()


def _wait_status(returncode: int | None) -> int | None:
    if returncode is None:
        return None
    return (-returncode) & 0x7F if returncode < 0 else (returncode & 0xFF) << 8
