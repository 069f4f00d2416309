"""The sandbox the student's code runs in: limits, namespaces, an unprivileged user, a clean environment.

Two processes make it (see :mod:`.child`):

- the **zygote**, started once per grading run by :class:`Zygote`. It never runs student code. As
  root it first leaves the machine's network, mount and IPC namespaces (:func:`isolate`): no network
  (not even 127.0.0.1 of the host), and a new root directory that holds only the system directories,
  the Python installation and ``course_lib`` (read-only), a few devices and fresh size-limited
  ``tmpfs`` for ``/tmp``: no course directory (solutions, hidden tests, gradebook, submissions), no
  home directories. Then it imports torch & co. once, so that each student's process starts in
  milliseconds instead of seconds;
- one **worker** per graded part, forked from the zygote (:func:`enter_worker`): its own session
  (the parent kills the whole process group), limits set with soft = hard so they cannot be raised
  (CPU time, address space, processes, file size, open files, no core dumps), then the user
  ``nobody`` with ``no_new_privs``, an empty read-only working directory, a scratch ``HOME`` and a
  scrubbed environment (:func:`minimal_env`: nothing says "grading").

Where the kernel refuses a step (not root, no user namespaces), the step is skipped and one log
line says what is not protected; :attr:`Zygote.report` collects those lines.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import os
import pwd
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass

from . import protocol

__all__ = ["Limits", "Zygote", "SandboxError", "minimal_env", "isolate", "enter_worker", "describe_exit",
           "python_paths", "default_hidden"]

log = logging.getLogger(__name__)

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x08000000, 0x10000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 36, 38
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
ENV_KEEP = ("PATH", "LANG", "LC_ALL", "KERAS_BACKEND")


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


class SandboxError(RuntimeError):
    """The sandbox could not be started (a configuration or machine problem, not the student's)."""


@dataclass(frozen=True)
class Limits:
    """What one worker (one graded part of one submission) may use.

    Times are seconds; sizes bytes. ``call_timeout`` and ``cell_timeout`` are wall-clock limits the
    trusted side enforces; the others are kernel limits set in the worker with soft = hard.
    """

    call_timeout: float = 60.0          # one call of the student's function
    cell_timeout: float = 120.0         # one notebook cell while the student's notebook is run
    cpu_seconds: int = 600              # RLIMIT_CPU: the whole worker, cells and calls
    memory_bytes: int = 6 * 2**30       # RLIMIT_AS: address space (torch + keras map ~1 GiB)
    processes: int = 64                 # RLIMIT_NPROC, for the unprivileged user (threads count)
    file_bytes: int = 64 * 2**20        # RLIMIT_FSIZE: any one file written
    open_files: int = 1024              # RLIMIT_NOFILE
    tmp_bytes: int = 256 * 2**20        # size of each private tmpfs (/tmp, /var/tmp, /dev/shm)
    user: str = "nobody"                # who the worker runs as when grading runs as root
    message_bytes: int = 64 * 2**20     # largest reply the trusted side reads

    def wire(self) -> protocol.WireLimits:
        return protocol.WireLimits(max_bytes=self.message_bytes)


def minimal_env(home: str) -> dict[str, str]:
    """The worker's whole environment: an allow-list, with ``HOME`` and caches in its scratch directory."""
    env = {k: os.environ[k] for k in ENV_KEEP if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    env.setdefault("KERAS_BACKEND", "torch")
    env.update(HOME=home, KERAS_HOME=os.path.join(home, ".keras"), MPLCONFIGDIR=os.path.join(home, ".matplotlib"),
               IPYTHONDIR=os.path.join(home, ".ipython"), TMPDIR=home, MPLBACKEND="Agg", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1", PYTHONHASHSEED="0")
    return env


def describe_exit(status: int | None) -> str:
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
        return f"killed by {name}{why}"
    if os.WIFEXITED(status):
        return f"exited with code {os.WEXITSTATUS(status)}"
    return f"ended (status {status})"


# ----------------------------------------------------------------------------- kernel calls

def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _unshare(flags: int) -> None:
    _check(_libc().unshare(ctypes.c_int(flags)), "unshare")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = (lambda s: None if s is None else s.encode())
    _check(_libc().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {target}")


def prctl(option: int, arg: int) -> None:
    _check(_libc().prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0),
                         ctypes.c_ulong(0)), f"prctl {option}")


def _drop_capabilities() -> None:
    """Clear every capability of this process (used inside a user namespace, where we start with all)."""
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    data = (Data * 2)()
    _check(_libc().capset(ctypes.byref(Header(0x20080522, 0)), data), "capset")


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


# ----------------------------------------------------------------------------- the zygote's isolation

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
DEVICES = ("null", "zero", "full", "random", "urandom")


def isolate(hide: list[str], keep: list[str], limits: Limits, root: str) -> tuple[list[str], bool]:
    """Leave the host's network, mounts and IPC, and move into a root that shows only what Python needs.

    The new root (a tmpfs at ``root``, entered with ``chroot``) holds read-only binds of the system
    directories (``/usr``, ``/lib``, ``/etc``...) and of ``keep`` (the Python installation, its
    site-packages, ``course_lib``), the harmless devices, ``/proc``, and fresh size-limited tmpfs on
    ``/tmp``, ``/var/tmp`` and ``/dev/shm``. Nothing else of the host exists there: not the course
    directory, not the gradebook, not anyone's home. ``hide`` paths inside a kept directory are covered.
    Runs in the zygote before it imports anything else. Returns (log lines, whether /tmp & co. are
    private and may be wiped between workers).
    """
    lines: list[str] = []
    if os.geteuid() != 0:
        return _isolate_unprivileged(lines), False
    try:
        _unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC)
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        os.makedirs(root, exist_ok=True)
        _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0755")
    except OSError as exc:
        lines.append(f"NOT ISOLATED: cannot create network/mount namespaces ({exc}); student code can reach the "
                     f"network and read every file its user can read. Run grading in a container (see README).")
        return lines, False
    lines.append("network: a new, empty network namespace (no interfaces up, no route even to the host's 127.0.0.1)")
    # Private /tmp and /var/tmp come first, so that a kept path that lives under them (a course cloned
    # into /tmp, say) is bound on top of the fresh tmpfs instead of being covered by it.
    for d in ("/tmp", "/var/tmp"):
        os.makedirs(root + d, exist_ok=True)
        _mount("tmpfs", root + d, "tmpfs", MS_NOSUID | MS_NODEV, f"size={limits.tmp_bytes},mode=1777")
    bound: list[str] = []
    for path in [*SYSTEM_DIRS, *sorted(set(keep), key=len)]:
        _bind_into(root, path, bound, lines)
    dev = root + "/dev"
    os.makedirs(dev)
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID, "size=64k,mode=0755")
    for name in DEVICES:
        open(f"{dev}/{name}", "w").close()
        _mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")
    os.makedirs(root + "/proc")
    _mount("/proc", root + "/proc", None, MS_BIND | MS_REC)
    os.makedirs(root + "/dev/shm", exist_ok=True)
    _mount("tmpfs", root + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={limits.tmp_bytes},mode=1777")
    for h in hide:
        if _under(os.path.realpath(h), bound) and os.path.exists(root + os.path.realpath(h)):
            target = root + os.path.realpath(h)
            if os.path.isdir(target):
                _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, "size=4k,mode=0755")
            else:
                _mount("/dev/null", target, None, MS_BIND)
            lines.append(f"hidden inside a kept directory: {h}")
    os.chroot(root)
    os.chdir("/")
    lines.append(f"files: a new root with only {', '.join(bound)} (read-only), /dev/{{{','.join(DEVICES)}}}, /proc, "
                 f"and private tmpfs of {limits.tmp_bytes // 2**20} MiB on /tmp, /var/tmp, /dev/shm, wiped after "
                 f"each worker")
    return lines, True


def _bind_into(root: str, path: str, bound: list[str], lines: list[str]) -> None:
    """Make ``path`` (and, if it is a symlink, what it points to) appear read-only at the same place under ``root``."""
    if not os.path.lexists(path) or _under(path, bound):
        return
    target = root + path
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.islink(path):
        if not os.path.lexists(target):
            os.symlink(os.readlink(path), target)
        real = os.path.realpath(path)
        if real != path:
            _bind_into(root, real, bound, lines)
        return
    if os.path.isdir(path):
        os.makedirs(target, exist_ok=True)
    else:
        open(target, "a").close()
    try:
        _mount(path, target, None, MS_BIND | MS_REC)
        _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        bound.append(path)
    except OSError as exc:
        lines.append(f"could not show {path} in the sandbox ({exc}); imports from it will fail")


def _isolate_unprivileged(lines: list[str]) -> list[str]:
    uid, gid = os.getuid(), os.getgid()
    try:
        _unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWIPC)
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")
        _drop_capabilities()
        lines.append("network: a new, empty network namespace (through a user namespace)")
    except OSError as exc:
        lines.append(f"NOT ISOLATED: not root and no user namespaces ({exc}): student code can reach the network.")
    lines.append("NOT ISOLATED: not root, so the worker runs as the grader's own user: it can read the course "
                 "directory and the gradebook if that user can, and the process limit counts all of its processes. "
                 "Run grading as root inside a container (see README).")
    return lines


# ----------------------------------------------------------------------------- one worker

def _count_tasks(uid: int) -> int:
    n = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.stat(f"/proc/{pid}").st_uid == uid:
                    n += len(os.listdir(f"/proc/{pid}/task"))
            except OSError:
                pass
    return n


def enter_worker(limits: Limits, scratch_root: str) -> str:
    """In a freshly forked worker: new session, scratch dirs, limits, unprivileged user. Returns its HOME.

    Everything here happens before any student code runs; the limits have soft = hard, so the student's
    code cannot raise them, and after the user switch it cannot get root back (``no_new_privs``).
    """
    os.setsid()
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    base = tempfile.mkdtemp(prefix=f"w{os.getpid()}-", dir=scratch_root)
    cwd, home = os.path.join(base, "cwd"), os.path.join(base, "home")
    os.mkdir(cwd, 0o755)
    os.mkdir(home, 0o700)
    run_as = None
    if os.geteuid() == 0:
        pw = pwd.getpwnam(limits.user)
        run_as = (pw.pw_uid, pw.pw_gid)
        os.chown(home, *run_as)
        os.chmod(base, 0o755)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(minimal_env(home))
    nproc = limits.processes if run_as else _count_tasks(os.getuid()) + limits.processes
    for res, value in ((resource.RLIMIT_CPU, limits.cpu_seconds), (resource.RLIMIT_AS, limits.memory_bytes),
                       (resource.RLIMIT_NPROC, nproc), (resource.RLIMIT_FSIZE, limits.file_bytes),
                       (resource.RLIMIT_NOFILE, limits.open_files), (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(res, (value, value))
    if run_as:
        os.setgroups([])
        os.setresgid(run_as[1], run_as[1], run_as[1])
        os.setresuid(run_as[0], run_as[0], run_as[0])
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    if run_as:
        try:
            os.setuid(0)
        except PermissionError:
            pass
        else:  # pragma: no cover - would mean the kernel ignored setresuid
            os._exit(70)
        stdlib = os.path.dirname(os.__file__)
        if not os.access(stdlib, os.R_OK | os.X_OK):
            raise SandboxError(f"user {limits.user} cannot read the Python installation ({stdlib}); grade inside "
                               f"a container, or install Python where every user can read it")
    return home


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
        cmd = [sys.executable, "-I", "-m", "course_lib.grading.child", "--zygote", str(theirs.fileno())]
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

    def close(self) -> None:
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
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
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

    def _request(self, message: dict, fds: list[int] = (), timeout: float = 30) -> dict:
        try:
            socket.send_fds(self.sock, [json.dumps(message).encode()], list(fds))
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                raise TimeoutError
            packet = self.sock.recv(1 << 20)
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
        self._request({"op": "preload", "modules": list(modules)}, timeout=self.start_timeout)

    def spawn(self) -> tuple[int, socket.socket]:
        """Fork one worker; returns its pid (= its process group) and our end of its channel."""
        self.ensure()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            reply = self._request({"op": "spawn"}, fds=[theirs.fileno()])
        finally:
            theirs.close()
        return int(reply["pid"]), ours

    def status(self, pid: int, wait: float = 2.0) -> int | None:
        """The worker's wait status if it has ended within ``wait`` seconds, else None."""
        if not self.alive:
            return None
        try:
            return self._request({"op": "status", "pid": pid, "wait": wait}, timeout=wait + 10).get("status")
        except SandboxError:
            return None

    def finish(self, pid: int) -> None:
        """Kill the worker's process group and everything it left behind; wipe the private /tmp."""
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.alive:
            try:
                self._request({"op": "cleanup", "pid": pid}, timeout=30)
            except SandboxError as exc:
                log.warning("sandbox: cleanup failed, restarting the zygote: %s", exc)
                self.close()


def _wait_status(returncode: int | None) -> int | None:
    if returncode is None:
        return None
    return (-returncode) & 0x7F if returncode < 0 else (returncode & 0xFF) << 8
