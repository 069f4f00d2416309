"""The sandbox the student's code runs in: limits, namespaces, an unprivileged user, a clean environment.

Two processes make it (see :mod:`.child`):

- the **zygote**, started once per grading run by :class:`Zygote`. It never runs student code. As
  root it first leaves the machine's network, mount and IPC namespaces (:func:`isolate`): no network
  (not even 127.0.0.1 of the host), and a new root directory that holds only the system directories,
  the Python installation and ``course_lib`` (read-only), a few devices and fresh size-limited
  ``tmpfs`` for ``/tmp``: no course directory (solutions, hidden tests, gradebook, submissions), no
  home directories. Then it imports torch & co. once, so that each student's process starts in
  milliseconds instead of seconds;
- one **worker** per graded part, forked from the zygote. It is contained first (:func:`contain`):
  its own memory and pids cgroup (made by the trusted side, :class:`Lease`), its own session, and
  its own PID, IPC and mount namespaces, whose first process (a tiny root ``init`` that only reaps)
  ends everything in them when it ends, and shows a fresh ``/proc`` with only that tree. Then
  (:func:`enter_worker`) limits set with soft = hard so they cannot be raised (CPU time, address
  space, processes, file size, open files, no core dumps), a user id no other live sandbox on the
  machine uses (:func:`take_uid`) with ``no_new_privs`` and the parent-death signal set again after
  the switch, an empty read-only working directory, a scratch ``HOME`` and a scrubbed environment
  (:func:`minimal_env`: nothing says "grading").

Where the kernel refuses a step (not root, no user namespaces), the step is skipped and one log
line says what is not protected; :attr:`Zygote.report` collects those lines.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import functools
import json
import logging
import os
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

from . import protocol

__all__ = ["Limits", "Zygote", "SandboxError", "Exit", "Lease", "minimal_env", "isolate", "contain", "enter_worker",
           "describe_exit", "python_paths", "default_hidden", "take_uid"]

log = logging.getLogger(__name__)

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = (0x00020000, 0x08000000, 0x10000000,
                                                                      0x20000000, 0x40000000)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
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
    submission_seconds: float = 600.0   # wall time for all graded parts of one submitted notebook
    cpu_seconds: int = 600              # RLIMIT_CPU: the whole worker, cells and calls
    memory_bytes: int = 6 * 2**30       # RLIMIT_AS: address space (torch + keras map ~1 GiB)
    processes: int = 64                 # RLIMIT_NPROC, for the worker's own user id (threads count)
    file_bytes: int = 64 * 2**20        # RLIMIT_FSIZE: any one file written
    open_files: int = 1024              # RLIMIT_NOFILE
    tmp_bytes: int = 256 * 2**20        # size of each private tmpfs (/tmp, /var/tmp, /dev/shm)
    resident_bytes: int = 6 * 2**30     # memory cgroup: the worker's whole tree, shared memory included
    uid_base: int = 2_000_000_000       # as root, each live sandbox runs as its own uid (= gid) from
    uid_count: int = 4096               # uid_base .. uid_base + uid_count - 1, held with a lock file
    message_bytes: int = 64 * 2**20     # largest reply the trusted side reads; also the notebook's code, sent whole
    max_cells: int = 50_000             # most code cells a notebook may have to be graded

    def wire(self) -> protocol.WireLimits:
        return protocol.WireLimits(max_bytes=self.message_bytes)

    def cells_wire(self) -> protocol.WireLimits:
        """The limits of the one message that carries the notebook's cells: every cell whole, never cut."""
        return protocol.WireLimits(max_bytes=self.message_bytes, max_header=self.message_bytes,
                                   max_str=self.message_bytes, max_nodes=3 * self.max_cells + 3)


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


# ----------------------------------------------------------------------------- kernel calls

@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library, loaded once per process (and inherited by every fork): ``find_library`` runs
    ``ldconfig -p`` in a subprocess, a fork of the whole zygote, so it must not run on each call."""
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


def _umount(target: str) -> None:
    _check(_libc().umount2(target.encode(), ctypes.c_int(MNT_DETACH)), f"umount {target}")


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


def remove_tree(path: str) -> None:
    """``rm -rf path`` without recursion and without following symlinks, however deep the tree is.

    It walks down with ``chdir`` one level at a time (so no path ever gets longer than one name, and
    only one directory is open at a time) and removes each directory once it is empty. Errors are
    ignored, as with ``shutil.rmtree(ignore_errors=True)``; only call it once nothing writes in the tree.
    """
    try:
        if not os.path.isdir(path) or os.path.islink(path):
            if os.path.lexists(path):
                os.unlink(path)
            return
    except OSError:
        return
    home = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    names: list[str] = []
    try:
        os.chdir(path)
        while True:
            down = None
            with os.scandir(".") as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False) and not os.path.ismount(entry.name):
                            down = entry.name
                            break
                        os.unlink(entry.name)
                    except OSError:
                        pass
            if down is not None:
                try:
                    os.chdir(down)
                    names.append(down)
                    continue
                except OSError:
                    pass
            if not names:
                break
            os.chdir("..")
            try:
                os.rmdir(names.pop())
            except OSError:
                break                          # something in it could not be removed: stop here
    except OSError:
        pass
    finally:
        os.fchdir(home)
        os.close(home)
    try:
        os.rmdir(path)
    except OSError:
        pass


def fresh_tmpfs(path: str, size: int) -> None:
    """Replace the tmpfs mounted at ``path`` by an empty one (the old one is freed once nothing uses it)."""
    _umount(path)
    _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")


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

NS_FLAGS = CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNS
_STATUS = struct.Struct("i")


def probe_namespaces() -> tuple[bool, str | None]:
    """In the zygote: can a worker get its own PID, IPC and mount namespaces? (a throw-away child tries, forked
    the way workers are: into a new PID namespace, where it makes the other two)"""
    try:
        new_pid_namespace_for_children()
        _own_pid_namespace()
    except OSError as exc:
        return False, (f"NOT PROTECTED: no PID/IPC namespace per worker ({exc.strerror}): a worker's code can "
                       f"signal and see the other processes of its user, its System V shared memory outlives "
                       f"it, and a double-forked child can outlive the part")
    pid = os.fork()
    if pid == 0:
        try:
            _unshare(CLONE_NEWIPC | CLONE_NEWNS)
        except OSError as exc:
            os._exit(100 + min(exc.errno or 0, 100))
        os._exit(0)
    try:
        same_pid_namespace_for_children()
    except OSError:
        os.waitpid(pid, 0)
        return False, ("NOT PROTECTED: no PID/IPC namespace per worker (setns refused): a worker's code can "
                       "signal and see the other processes of its user, its System V shared memory outlives "
                       "it, and a double-forked child can outlive the part")
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return True, None
    err = os.WEXITSTATUS(status) - 100 if os.WIFEXITED(status) else 0
    return False, (f"NOT PROTECTED: no PID/IPC namespace per worker ({os.strerror(err) if err > 0 else 'refused'}): "
                   f"a worker's code can signal and see the other processes of its user, its System V shared "
                   f"memory outlives it, and a double-forked child can outlive the part")


def contain(channel: int, cgroup_fds: list[int], status_fd: int | None, zygote_pid: int,
            fresh_tmp: list[str] = (), tmp_bytes: int = 0) -> int:
    """In a freshly forked worker, before anything else: its cgroups, its session, its own namespaces.

    With ``status_fd`` (namespaces are available) the zygote forked this process straight into a new
    PID namespace (:func:`new_pid_namespace_for_children`), so it is that namespace's ``init`` (pid 1:
    root, reaps, ignores every signal sent from inside) and never returns: it gives itself its own
    IPC and mount namespaces, a fresh ``/proc`` and fresh tmpfs on ``fresh_tmp`` (freed by the kernel
    with the namespace, so nothing a worker leaves there is seen by the next), and forks the worker
    proper. When the worker ends, ``init`` writes its wait status to ``status_fd`` and exits, and the
    kernel kills everything else in the PID namespace; when ``init`` is killed (``Zygote.finish``, or
    the zygote's death through the parent-death signal), the same happens. Returns, in the worker,
    the pid its parent must have (to check after the uid switch).
    """
    _forget_pid_namespace()
    for fd in cgroup_fds:
        os.write(fd, str(os.getpid()).encode())        # join this sandbox's memory and pids cgroups
        os.close(fd)
    os.setsid()                                        # the trusted side kills the whole process group
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if status_fd is None:
        if os.getppid() != zygote_pid:
            os._exit(0)
        return zygote_pid
    if not _alive(zygote_pid):                         # (getppid() reads 0 here: the zygote is outside)
        os._exit(0)
    try:
        with open("/proc/self/oom_score_adj", "w") as f:   # the OOM killer picks the student's processes first
            f.write("-1000")
    except OSError:
        pass                                            # (not allowed here: an OOM kill may end init instead)
    _unshare(CLONE_NEWIPC | CLONE_NEWNS)               # (the zygote's mounts are all private already)
    _umount("/proc")                                    # the host's processes, bound in by the zygote
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for d in fresh_tmp:
        _mount("tmpfs", d, "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_bytes},mode=1777")
    worker = os.fork()
    if worker == 0:
        os.close(status_fd)
        return 1
    os.close(channel)
    for sig in range(1, signal.NSIG):                   # nothing inside can stop or kill init
        if sig not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
            try:
                signal.signal(sig, signal.SIG_IGN)
            except (OSError, ValueError):
                pass
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(0)
        if pid == worker:
            os.write(status_fd, _STATUS.pack(status))
            os._exit(0)                                # and the kernel ends every process left inside


def new_pid_namespace_for_children() -> None:
    """In the zygote: the next process it forks is ``init`` of a new PID namespace (the zygote stays where
    it is). Undo with :func:`same_pid_namespace_for_children` right after the fork."""
    _unshare(CLONE_NEWPID)


_PID_NS: list[int] = []                  # the zygote's descriptor of its own PID namespace (opened once)


def _own_pid_namespace() -> int:
    if not _PID_NS:
        _PID_NS.append(os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC))
    return _PID_NS[0]


def same_pid_namespace_for_children() -> None:
    """In the zygote, after forking a namespace's ``init``: its next children are in its own PID namespace again
    (``setns`` to it; a second ``unshare`` would be refused until then)."""
    _check(_libc().setns(ctypes.c_int(_own_pid_namespace()), ctypes.c_int(CLONE_NEWPID)), "setns")


def _forget_pid_namespace() -> None:
    """In a forked worker: close the zygote's descriptor of its PID namespace (the worker never needs it)."""
    while _PID_NS:
        os.close(_PID_NS.pop())


def fresh_tmp_dirs(keep: list[str]) -> list[str]:
    """The world-writable directories each worker gets as an empty tmpfs of its own: those that are mount
    points and hold no kept path (a course cloned under /tmp is bound read-only inside the zygote's /tmp)."""
    return [d for d in WORLD_WRITABLE if os.path.isdir(d) and os.path.ismount(d)
            and not any(_under(os.path.realpath(k), [d]) for k in keep)]


def _alive(pid: int) -> bool:
    """Whether ``pid`` still exists as seen from the caller's parent namespace (checked before unmounting)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


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


def enter_worker(limits: Limits, scratch_root: str, uid: int | None = None, parent: int | None = None) -> str:
    """In the worker (after :func:`contain`): scratch dirs, limits, its own user id. Returns its HOME.

    Everything here happens before any student code runs; the limits have soft = hard, so the student's
    code cannot raise them, and after the user switch it cannot get root back (``no_new_privs``). The
    kernel clears the parent-death signal at the uid change, so it is set again after it, and the
    parent (``init`` of its namespace, or the zygote) is checked to be still there.
    """
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    base = tempfile.mkdtemp(prefix=f"w{os.getpid()}-", dir=scratch_root)
    cwd, home = os.path.join(base, "cwd"), os.path.join(base, "home")
    os.mkdir(cwd, 0o755)
    os.mkdir(home, 0o700)
    run_as = (uid, uid) if uid is not None and os.geteuid() == 0 else None
    if run_as:
        os.chown(home, *run_as)
        os.chmod(base, 0o755)
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("0")
        except OSError:
            pass
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
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)           # cleared by the kernel at the uid change
    if parent is not None and os.getppid() != parent:
        os._exit(0)                                    # the parent died before the signal was set again
    if run_as:
        try:
            os.setuid(0)
        except PermissionError:
            pass
        else:  # pragma: no cover - would mean the kernel ignored setresuid
            os._exit(70)
        stdlib = os.path.dirname(os.__file__)
        if not os.access(stdlib, os.R_OK | os.X_OK):
            raise SandboxError(f"uid {uid} cannot read the Python installation ({stdlib}); grade inside "
                               f"a container, or install Python where every user can read it")
    return home


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
        self._request({"op": "preload", "modules": list(modules)}, timeout=self.start_timeout)
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
                self._request({"op": "variant", "forbid": list(key)}, fds=[theirs.fileno()])
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
        """Fork one worker, with ``forbidden`` switched off (:mod:`.forbid`); returns its pid (= its process
        group) and our end of its channel.

        As root the worker gets a uid of its own and fresh cgroups (:class:`Lease`), held until
        :meth:`finish`.
        """
        self.ensure()
        channel = self._variant(list(forbidden))
        lease = Lease(self.limits, self._cgroups) if os.geteuid() == 0 else None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            reply = self._request({"op": "spawn", "uid": lease.uid if lease else None},
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
            reply = self._request({"op": "status", "pid": pid, "wait": wait}, timeout=wait + 10,
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
                self._request({"op": "cleanup", "pid": pid}, timeout=30, channel=channel)
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
