"""Runs in the sandbox: how the zygote isolates itself and how each worker is contained, as root, before
any of the student's code runs.

- the **zygote** (:mod:`.zygote`), started once per grading run, never runs student code. As root it
  first leaves the machine's network, mount and IPC namespaces (:func:`isolate`): no network (not
  even 127.0.0.1 of the host), and a new root directory that holds only the system directories, the
  Python installation and ``course_lib`` (read-only), a few devices and fresh size-limited ``tmpfs``
  for ``/tmp``: no course directory (solutions, hidden tests, gradebook, submissions), no home
  directories. Then it imports torch & co. once, so that each student's process starts in
  milliseconds instead of seconds;
- one **worker** per graded part (:mod:`.worker`), forked from the zygote straight into a new PID
  namespace. It is contained first (:func:`contain`): its own memory and pids cgroup (made by the
  grader, :class:`..grader.zygote.Lease`), its own session, and its own IPC and mount namespaces
  with a fresh ``/proc`` and its own empty ``/tmp``; the namespace's first process (a tiny root
  ``init`` that only reaps) ends everything in it when it ends. Then (:func:`enter_worker`) limits
  set with soft = hard so they cannot be raised (CPU time, address space, processes, file size,
  open files, no core dumps), a user id no other live sandbox on the machine uses with
  ``no_new_privs`` and the parent-death signal set again after the switch, an empty read-only
  working directory, a scratch ``HOME`` and a scrubbed environment (:func:`minimal_env`: nothing
  says "grading").

Where the kernel refuses a step (not root, no user namespaces), the step is skipped and one log
line says what is not protected; :attr:`..grader.zygote.Zygote.report` collects those lines.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import resource
import signal
import struct
import tempfile

from ..limits import Limits

__all__ = ["SandboxError", "minimal_env", "isolate", "contain", "enter_worker", "probe_namespaces", "prctl",
           "remove_tree", "fresh_tmpfs", "fresh_tmp_dirs", "under", "STATUS", "WORLD_WRITABLE",
           "new_pid_namespace_for_children", "same_pid_namespace_for_children"]

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = (0x00020000, 0x08000000, 0x10000000,
                                                                      0x20000000, 0x40000000)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 36, 38
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
ENV_KEEP = ("PATH", "LANG", "LC_ALL", "KERAS_BACKEND")


class SandboxError(RuntimeError):
    """The sandbox could not be started (a configuration or machine problem, not the student's)."""


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


def under(path: str, roots: list[str]) -> bool:
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
        if under(os.path.realpath(h), bound) and os.path.exists(root + os.path.realpath(h)):
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
    if not os.path.lexists(path) or under(path, bound):
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

STATUS = struct.Struct("i")                # how init reports the worker's wait status


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
            os.write(status_fd, STATUS.pack(status))
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
            and not any(under(os.path.realpath(k), [d]) for k in keep)]


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


