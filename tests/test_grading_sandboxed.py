"""The sandbox a student's code runs in (course_lib.grading.sandboxed, driven through course_lib.grading.grader):
are its limits really enforced, and does the trusted side survive?

Each test starts a worker from one shared zygote (it imports torch once), runs a few cells in it and
calls a function, the way a graded part does. The dangerous cases are bounded inside the code itself
(a few thousand forks at most, 2 GB of writes at most, one allocation), so a sandbox that failed would
make the test fail rather than harm the machine.
"""
from __future__ import annotations

import dataclasses
import os
import re
import signal
import socket
import threading
import time

import pytest
import torch

from course_lib.grading.grader.remote import RemoteFunction
from course_lib.grading.grader.worker import CellPlan, NotDefined, SandboxFailure, Worker
from course_lib.grading.grader.zygote import Zygote, default_hidden, python_paths
from course_lib.grading.limits import Limits

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: user switch, namespaces")
LIMITS = Limits(call_timeout=4, cell_timeout=4, cpu_seconds=60, memory_bytes=4 * 2**30, processes=32,
                file_bytes=2**20, tmp_bytes=16 * 2**20, resident_bytes=2**30)
SECRET_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # the repository: must stay hidden


@pytest.fixture(scope="module")
def zygote():
    z = Zygote(LIMITS, hide=[SECRET_DIR, *default_hidden()], keep=python_paths())
    z.start()
    yield z
    z.close()


@pytest.fixture(scope="module")
def neighbour():
    """A second zygote, as a second Dask worker (or a second grading run) on the same machine has."""
    z = Zygote(LIMITS, hide=[SECRET_DIR, *default_hidden()], keep=python_paths())
    z.start()
    yield z
    z.close()


def host_pids_of(uid: int) -> list[int]:
    """Processes of ``uid`` anywhere on the machine (seen from the host's /proc)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid and alive(int(pid)):
                out.append(int(pid))
        except OSError:
            pass
    return out


def run(zygote, *cells: str, plan: CellPlan | None = None) -> Worker:
    worker = Worker(zygote, LIMITS, list(enumerate(cells)), plan or CellPlan())
    worker.start()
    return worker


def call(zygote, source: str, *args, name: str = "f"):
    """Define ``name`` in a fresh worker from ``source`` and call it once."""
    with run(zygote, "import os, sys, time, signal\nimport torch, numpy as np", source) as w:
        return w.function(name)(*args)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


# ----------------------------------------------------------------------------- what the student sees

def test_a_function_runs_in_the_sandbox_and_returns_plain_data(zygote):
    got = call(zygote, "def f(x, scale=2.0):\n    return x * scale, x.dtype == torch.float32", torch.ones(2, 3))
    assert type(got[0]) is torch.Tensor and torch.equal(got[0], torch.full((2, 3), 2.0)) and got[1] is True


def test_the_proxy_has_the_students_signature_and_name(zygote):
    import inspect
    with run(zygote, "def lstm_cell(input, hx, *, bias=None):\n    pass\nvalue = 3") as w:
        fn = w.function("lstm_cell")
        assert isinstance(fn, RemoteFunction) and fn.__name__ == "lstm_cell"
        assert str(inspect.signature(fn)) == "(input, hx, *, bias=None)"
        assert w.function("value") == 3                        # not callable: its plain value
        with pytest.raises(NotDefined, match="name 'missing' is not defined"):
            w.function("missing")


def test_a_students_exception_comes_back_with_its_name_and_line(zygote):
    import traceback
    source = "def f(x):\n    y = x + 1\n    raise ValueError('shapes do not match')\n"
    with pytest.raises(ValueError, match="shapes do not match") as info:
        call(zygote, source, torch.zeros(1))
    frame = traceback.extract_tb(info.value.__traceback__)[-1]
    assert (frame.name, frame.lineno, frame.line) == ("f", 3, "raise ValueError('shapes do not match')")
    with pytest.raises(NotImplementedError):
        call(zygote, "def f():\n    raise NotImplementedError()")


def test_in_place_changes_to_arguments_reach_the_callers_tensors_and_lists(zygote):
    x, grads = torch.zeros(3), [torch.ones(2), torch.ones(2)]
    call(zygote, "def f(x, grads):\n    x += 5\n    grads[0] = grads[0] * 0", x, grads)
    assert torch.equal(x, torch.full((3,), 5.0))
    assert torch.equal(grads[0], torch.zeros(2))


def test_printing_cannot_forge_a_reply(zygote):
    source = ("def f(x):\n"
              "    print('all tests passed' * 1000)\n"
              "    os.write(1, b'\\x00' * 64)\n"
              "    sys.stderr.write('error')\n"
              "    return x + 1")
    assert torch.equal(call(zygote, source, torch.zeros(2)), torch.ones(2))


# ----------------------------------------------------------------------------- faults end only the call

@pytest.mark.parametrize("body, reason", [
    ("os._exit(0)", "exited with code 0"),
    ("os.kill(os.getpid(), signal.SIGKILL)", "killed by SIGKILL"),
    ("signal.signal(signal.SIGINT, signal.SIG_IGN)\n    while True:\n        pass", "did not finish within 4 s"),
])
def test_a_call_that_ends_or_hangs_the_process_fails_with_the_reason(zygote, body, reason):
    start = time.monotonic()
    with run(zygote, "import os, signal", f"def f():\n    {body}") as w:
        pid = w.pid
        with pytest.raises(SandboxFailure, match=reason):
            w.function("f")()
        with pytest.raises(SandboxFailure):                 # a dead worker stays dead
            w.function("f")
    assert time.monotonic() - start < 20
    assert not alive(pid)


def test_sys_exit_in_a_function_is_just_an_exception(zygote):
    with run(zygote, "import sys\ndef f():\n    sys.exit(3)\ndef g():\n    return 1") as w:
        with pytest.raises(Exception) as info:
            w.function("f")()
        assert type(info.value).__name__ == "SystemExit" and not isinstance(info.value, SystemExit)
        assert w.function("g")() == 1


def test_a_cell_that_hangs_or_exits_is_skipped_and_the_rest_still_runs(zygote):
    plan = CellPlan()
    cells = ["def f():\n    return 1", "while True:\n    pass", "import os\nos._exit(1)", "def g():\n    return 2",
             "1 / 0"]
    with run(zygote, *cells, plan=plan) as w:
        assert w.function("f")() == 1 and w.function("g")() == 2
    assert set(plan.skip) == {1, 2} and plan.errors[4][0] == "ZeroDivisionError"
    with run(zygote, *cells, plan=plan) as w:                  # the next part's worker skips them at once
        assert w.function("g")() == 2


# ----------------------------------------------------------------------------- limits

def test_limits_are_set_soft_equal_hard_and_cannot_be_raised(zygote):
    source = ("import resource\n"
              "def f():\n"
              "    names = ['RLIMIT_CPU', 'RLIMIT_AS', 'RLIMIT_NPROC', 'RLIMIT_FSIZE', 'RLIMIT_NOFILE',\n"
              "             'RLIMIT_CORE']\n"
              "    limits = {n: resource.getrlimit(getattr(resource, n)) for n in names}\n"
              "    raised = []\n"
              "    for n in names:\n"
              "        try:\n"
              "            resource.setrlimit(getattr(resource, n), (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
              "            raised.append(n)\n"
              "        except (ValueError, OSError):\n"
              "            pass\n"
              "    return limits, raised")
    limits, raised = call(zygote, source)
    assert raised == []
    assert limits["RLIMIT_CPU"] == (LIMITS.cpu_seconds,) * 2 and limits["RLIMIT_AS"] == (LIMITS.memory_bytes,) * 2
    assert limits["RLIMIT_FSIZE"] == (LIMITS.file_bytes,) * 2 and limits["RLIMIT_CORE"] == (0, 0)
    assert limits["RLIMIT_NPROC"][0] == limits["RLIMIT_NPROC"][1]


def test_allocating_100_gb_fails_inside_the_call_and_the_worker_goes_on(zygote):
    with run(zygote, "import torch\ndef f():\n    return torch.empty(25 * 2**30).sum()\ndef g():\n    return 7") as w:
        with pytest.raises(Exception) as info:           # one request, refused by RLIMIT_AS
            w.function("f")()
        assert type(info.value).__name__ in ("RuntimeError", "MemoryError")
        assert w.function("g")() == 7


def test_a_fork_bomb_is_stopped_by_the_process_limit_and_cleaned_up(zygote):
    source = ("def f():\n"
              "    pids = []\n"
              "    for _ in range(3000):\n"                     # bounded: a few thousand attempts at most
              "        try:\n"
              "            pid = os.fork()\n"
              "        except OSError:\n"
              "            break\n"
              "        if pid == 0:\n"
              "            os.setsid()\n"                          # try to leave the process group too
              "            time.sleep(600)\n"
              "            os._exit(0)\n"
              "        pids.append(pid)\n"
              "    return os.getuid(), pids")
    with run(zygote, "import os, time", source) as w:
        uid, pids = w.function("f")()
    assert 0 < len(pids) < 3000
    if os.geteuid() == 0:              # its own uid and PID namespace: count it from the host, by uid
        assert len(pids) < LIMITS.processes
        assert host_pids_of(uid) == [], "every process the student started is gone after the part"
    else:
        time.sleep(0.2)
        assert not any(alive(p) for p in pids), "every process the student started is gone after the part"


def test_writing_a_big_file_stops_at_the_file_size_limit(zygote):
    source = ("def f():\n"
              "    path = os.path.join(os.environ['HOME'], 'big')\n"
              "    try:\n"
              "        with open(path, 'wb') as out:\n"
              "            for _ in range(2048):\n"              # 2 GB at most
              "                out.write(b'x' * 2**20)\n"
              "                out.flush()\n"
              "    except OSError as exc:\n"
              "        return os.path.getsize(path), type(exc).__name__\n"
              "    return os.path.getsize(path), None")
    with run(zygote, "import os", source) as w:
        try:
            size, error = w.function("f")()
        except SandboxFailure as exc:                      # or killed by SIGXFSZ, if it is not ignored
            assert "SIGXFSZ" in str(exc)
        else:
            assert size <= LIMITS.file_bytes and error is not None


@ROOT_ONLY
def test_filling_the_disk_with_many_files_stops_at_the_private_tmpfs(zygote):
    source = ("def f():\n"
              "    written = 0\n"
              "    try:\n"
              "        for i in range(2048):\n"                  # 2 GB at most, 1 MB per file
              "            with open(f'/tmp/fill{i}', 'wb') as out:\n"
              "                out.write(b'x' * 2**20)\n"
              "            written += 2**20\n"
              "    except OSError:\n"
              "        pass\n"
              "    return written")
    with run(zygote, source) as w:
        written = w.function("f")()
    assert written <= LIMITS.tmp_bytes
    with run(zygote, "import os\ndef f():\n    return sorted(os.listdir('/tmp'))") as w:
        assert not any(name.startswith("fill") for name in w.function("f")()), "wiped between workers"


# ----------------------------------------------------------------------------- isolation

@ROOT_ONLY
def test_the_worker_runs_as_nobody_with_a_scrubbed_environment(zygote, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    source = ("def f():\n"
              "    try:\n"
              "        open('forged_results.json', 'w').write('{}')\n"
              "        wrote = True\n"
              "    except OSError:\n"
              "        wrote = False\n"
              "    return os.getuid(), os.getgid(), sorted(os.environ), wrote, os.listdir('.')")
    uid, gid, env, wrote, listing = call(zygote, source)
    assert LIMITS.uid_base <= uid < LIMITS.uid_base + LIMITS.uid_count and gid == uid
    assert not any("NBGRADER" in k or "JPY" in k for k in env) and "PATH" in env
    assert not wrote and listing == []


@ROOT_ONLY
def test_only_the_system_and_python_are_visible_not_the_course_or_anyones_files(zygote):
    source = ("def f(paths):\n"
              "    out = {}\n"
              "    for p in paths:\n"
              "        try:\n"
              "            out[p] = sorted(os.listdir(p))\n"
              "        except OSError as exc:\n"
              "            out[p] = type(exc).__name__\n"
              "    return out")
    home = os.path.expanduser("~")
    parent = os.path.dirname(SECRET_DIR)
    got = call(zygote, source, [SECRET_DIR, os.path.join(SECRET_DIR, "solutions"), home, parent, "/"])
    assert set(got[SECRET_DIR]) <= {".venv", "course_lib"}, "only what Python needs of the repository"
    assert got[os.path.join(SECRET_DIR, "solutions")] == "FileNotFoundError"
    beside = got[parent]
    if parent in ("/tmp", "/var/tmp"):   # a course cloned into /tmp: there /tmp is the sandbox's own, empty
        beside = [name for name in beside if not re.fullmatch(r"w\d+-\w+", name)]
    assert beside == [os.path.basename(SECRET_DIR)], "nothing beside the repository either"
    if home != "/":
        assert not isinstance(got[home], list) or set(got[home]) <= {".pyenv", ".local"}
    assert set(got["/"]) <= {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "dev", "proc", "tmp",
                             "var", *(p.split("/")[1] for p in python_paths())}


@ROOT_ONLY
def test_no_network_not_even_the_hosts_loopback(zygote):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    connected = []

    def accept():
        try:
            connected.append(server.accept())
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    source = ("import socket\n"
              "def f(port):\n"
              "    s = socket.socket()\n"
              "    s.settimeout(1)\n"
              "    try:\n"
              "        s.connect(('127.0.0.1', port))\n"
              "        s.sendall(b'the hidden tests')\n"
              "        return 'connected'\n"
              "    except OSError as exc:\n"
              "        return type(exc).__name__")
    try:
        got = call(zygote, source, port)
    finally:
        thread.join()
        server.close()
    assert got != "connected" and connected == []


def test_a_crashed_zygote_is_restarted(zygote):
    os.kill(zygote.proc.pid, 9)
    zygote.proc.wait()
    assert call(zygote, "def f():\n    return 5") == 5


# ----------------------------------------------------------------------------- each sandbox alone

@ROOT_ONLY
def test_kill_minus_one_and_proc_reach_only_the_workers_own_sandbox(zygote, neighbour):
    """Two sandboxes at once (two zygotes, as two Dask workers have): one kills every process it can
    signal and every pid it finds in /proc; the other's function still answers, and they never share a uid."""
    attack = ("def f():\n"
              "    seen = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
              "    for sig in (signal.SIGSTOP, signal.SIGKILL):\n"
              "        try:\n"
              "            os.kill(-1, sig)\n"
              "        except OSError:\n"
              "            pass\n"
              "        for pid in seen:\n"
              "            if pid != os.getpid():\n"
              "                try:\n"
              "                    os.kill(pid, sig)\n"
              "                except OSError:\n"
              "                    pass\n"
              "    return os.getuid(), os.getpid(), seen")
    with run(neighbour, "import os\ndef g():\n    return os.getuid()") as victim:
        victim_uid = victim.function("g")()
        uid, pid, seen = call(zygote, attack)
        assert victim.function("g")() == victim_uid, "the other sandbox's worker is untouched"
    assert uid != victim_uid
    assert seen == [1, pid], "its /proc shows only its own init and itself"


@ROOT_ONLY
def test_the_process_limit_counts_only_the_workers_own_tree(zygote, neighbour):
    hog = ("def f():\n"
           "    n = 0\n"
           "    for _ in range(100):\n"                      # bounded: at most 100 sleepers
           "        try:\n"
           "            if os.fork() == 0:\n"
           "                time.sleep(60)\n"
           "                os._exit(0)\n"
           "        except OSError:\n"
           "            break\n"
           "        n += 1\n"
           "    return n")
    honest = ("import threading\n"
              "def f():\n"
              "    t = threading.Thread(target=lambda: None)\n"
              "    t.start()\n"
              "    t.join()\n"
              "    return 'started'")
    with run(neighbour, "import os, time", hog) as w:
        held = w.function("f")()
        assert 0 < held < LIMITS.processes
        assert call(zygote, honest) == "started"


@ROOT_ONLY
def test_a_double_forked_child_dies_with_the_part_and_the_parent_death_signal_survives_the_uid_switch(zygote):
    source = ("import ctypes\n"
              "def f():\n"
              "    child = os.fork()\n"
              "    if child == 0:\n"
              "        if os.fork() == 0:\n"
              "            os.setsid()\n"
              "            time.sleep(120)\n"
              "        os._exit(0)\n"
              "    os.waitpid(child, 0)\n"                     # its child, now an orphan, is running
              "    sig = ctypes.c_int(0)\n"
              "    ctypes.CDLL(None).prctl(2, ctypes.byref(sig), 0, 0, 0)\n"     # PR_GET_PDEATHSIG
              "    return os.getuid(), sig.value")
    with run(zygote, "import os, time", source) as w:
        uid, pdeathsig = w.function("f")()
        assert len(host_pids_of(uid)) >= 2, "the worker and its orphan are alive during the part"
    assert pdeathsig == signal.SIGKILL
    assert host_pids_of(uid) == [], "nothing of the part is left once it has ended"


def keys(sysvipc_shm: str) -> list[int]:
    """The keys listed in a /proc/sysvipc/shm text."""
    return [int(line.split()[0]) for line in sysvipc_shm.splitlines()[1:] if line.strip()]


@ROOT_ONLY
def test_system_v_shared_memory_neither_escapes_nor_outlives_the_part(zygote):
    source = ("import ctypes\n"
              "libc = ctypes.CDLL(None, use_errno=True)\n"
              "def f():\n"
              "    return libc.shmget(0x5eed, 2**20, 0o1000 | 0o666)\n"      # IPC_CREAT
              "def listing():\n"
              "    return open('/proc/sysvipc/shm').read()")
    with run(zygote, source) as w:
        assert w.function("f")() >= 0
        assert keys(w.function("listing")()) == [0x5eed], "visible to the part itself"
        with open("/proc/sysvipc/shm") as f:
            assert 0x5eed not in keys(f.read()), "not in the host's IPC namespace"
    with run(zygote, source) as w:
        assert keys(w.function("listing")()) == [], "not in the next part's either"


@ROOT_ONLY
def test_shared_memory_counts_against_the_parts_memory_limit(zygote):
    source = ("import ctypes\n"
              "libc = ctypes.CDLL(None, use_errno=True)\n"
              "libc.shmat.restype = ctypes.c_void_p\n"
              "def f():\n"
              "    made = 0\n"
              "    for key in range(8):\n"                      # bounded: 8 x 256 MiB at most
              "        sid = libc.shmget(0x7000 + key, 2**28, 0o1000 | 0o600)\n"
              "        if sid < 0:\n"
              "            break\n"
              "        addr = libc.shmat(sid, None, 0)\n"
              "        ctypes.memset(addr, 1, 2**28)\n"
              "        libc.shmdt(ctypes.c_void_p(addr))\n"
              "        made += 1\n"
              "    return made")
    patient = dataclasses.replace(LIMITS, call_timeout=120)       # the kernel reclaims what it can first
    with Worker(zygote, patient, [(0, source)], CellPlan()) as w:
        try:
            made = w.function("f")()
        except SandboxFailure as exc:
            assert "the memory limit of 1024 MiB" in str(exc)
        else:
            assert made * 2**28 <= LIMITS.resident_bytes


@ROOT_ONLY
def test_a_killed_zygote_takes_every_process_of_its_parts_with_it(neighbour):
    source = ("def f():\n"
              "    child = os.fork()\n"
              "    if child == 0:\n"
              "        if os.fork() == 0:\n"
              "            time.sleep(120)\n"
              "        os._exit(0)\n"
              "    os.waitpid(child, 0)\n"
              "    return os.getuid()")
    w = run(neighbour, "import os, time", source)
    uid = w.function("f")()
    os.kill(neighbour.proc.pid, signal.SIGKILL)
    neighbour.proc.wait()
    deadline = time.monotonic() + 10
    while host_pids_of(uid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert host_pids_of(uid) == []
    w.close()
    neighbour.ensure()


# ----------------------------------------------------------------------------- robustness

@ROOT_ONLY
def test_a_3000_deep_directory_tree_is_wiped_and_the_zygote_survives(zygote):
    source = ("def f():\n"
              "    base = os.open('/tmp', os.O_RDONLY)\n"
              "    os.chdir('/tmp')\n"
              "    for _ in range(3000):\n"                   # bounded: 3000 levels, one byte each
              "        os.mkdir('d')\n"
              "        os.chdir('d')\n"
              "    open('leaf', 'w').write('x')\n"
              "    return 3000")
    pid = zygote.proc.pid
    with run(zygote, "import os", source) as w:
        assert w.function("f")() == 3000
    with run(zygote, "import os\ndef f():\n    return sorted(os.listdir('/tmp'))") as w:
        assert "d" not in w.function("f")()
    assert zygote.proc.pid == pid, "the zygote was not restarted"


def test_a_notebook_too_large_to_send_whole_is_refused_with_the_reason(zygote):
    many = [(i, "x = 1") for i in range(LIMITS.max_cells + 1)]
    with pytest.raises(SandboxFailure, match=f"{LIMITS.max_cells + 1} code cells.*at most {LIMITS.max_cells} cells"):
        Worker(zygote, LIMITS, many, CellPlan()).start()


def test_a_cell_over_one_mib_runs_whole_not_cut(zygote):
    big = "data = '" + "a" * (3 * 2**20) + "'\ndef f():\n    return len(data)"
    with run(zygote, big) as w:
        assert w.function("f")() == 3 * 2**20


# ----------------------------------------------------------------------------- budget, and kills from outside

def test_the_submissions_time_budget_stops_a_slow_notebook_with_its_own_reason(zygote):
    start = time.monotonic()
    worker = Worker(zygote, LIMITS, [(0, "import time\nwhile True:\n    time.sleep(0.1)")], CellPlan(),
                    deadline=time.monotonic() + 1.5)
    with pytest.raises(SandboxFailure, match="the time for grading this submission .* ran out"):
        worker.start()
    worker.close()
    assert time.monotonic() - start < LIMITS.cell_timeout, "stopped by the budget, not by the cell's own limit"


@ROOT_ONLY
def test_a_worker_killed_from_outside_is_not_blamed_on_the_student(zygote):
    with run(zygote, "import os, signal\ndef f():\n    return 1\ndef g():\n    os.kill(os.getpid(), signal.SIGKILL)") as w:
        os.killpg(w.pid, signal.SIGKILL)                     # as the host (or an administrator) would
        with pytest.raises(SandboxFailure) as info:
            w.function("f")()
        assert info.value.outside and "not by you" in str(info.value)
    with run(zygote, "import os, signal\ndef g():\n    os.kill(os.getpid(), signal.SIGKILL)") as w:
        with pytest.raises(SandboxFailure) as info:
            w.function("g")()
        assert not info.value.outside and "killed by SIGKILL" in str(info.value)


@ROOT_ONLY
def test_a_part_stopped_from_outside_is_graded_again_and_logged(zygote):
    from types import SimpleNamespace

    from course_lib.grading import testcells, verdict
    attempts = []

    def check_one(f):
        attempts.append(f)
        if len(attempts) == 1:
            os.killpg(f._worker.pid, signal.SIGKILL)        # the first attempt dies from outside
        assert f() == 1

    checkers = SimpleNamespace(check_one=check_one)
    calls = testcells.parse_test_cell("checkers.check_one(f)")
    result = verdict.grade_part(zygote, LIMITS, [(0, "def f():\n    return 1")], CellPlan(), calls, checkers)
    assert result.passed and len(attempts) == 2
    assert result.log[0].startswith("RETRIED")
