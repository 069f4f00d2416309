#!/usr/bin/env python3
"""The course's two commands, runnable on a machine that has only Python 3.10+.

    python3 dev.py book    # set up .venv, build the HTML book into book/_build/html
    python3 dev.py test    # set up .venv, run the test suite (extra args go to pytest)

The test suite includes a real-browser test of the built book and a test of grading into a
PostgreSQL gradebook; as root on Debian, ``test`` installs the ``chromium`` and ``postgresql``
packages if they are missing (distribution packages, never a download).

Set-up creates a virtual environment in ``.venv`` and installs ``course_lib`` with
every tool the course uses, pinned by ``constraints.txt`` (PyTorch 2.13.0, CPU
build). It is skipped when nothing it depends on has changed since the last run.
"""
from __future__ import annotations

import glob
import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".course-setup"


def _setup_fingerprint() -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def setup() -> None:
    """Create .venv and install the course into it, unless it is already up to date."""
    if not PY.exists():
        print(f"dev.py: creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    fingerprint = _setup_fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return
    print("dev.py: installing course_lib and its tools (pinned by constraints.txt)", flush=True)
    subprocess.run(
        [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q",
         "-c", str(ROOT / "constraints.txt"), "-e", f"{ROOT}[dev]"],
        check=True,
    )
    STAMP.write_text(fingerprint)


#: Debian packages the tests use, and a path each one installs.
SYSTEM_PACKAGES = {
    "chromium": "/usr/bin/chromium",                       # tests/test_book_site.py: the built book in a browser
    "postgresql": "/usr/lib/postgresql/*/bin/initdb",      # tests/test_grading_dask_e2e.py: a PostgreSQL gradebook
}


def ensure_system_packages() -> None:
    """Install the missing packages of SYSTEM_PACKAGES with apt-get when we are root on Debian.

    A failed installation is reported and the tests go on: those that need the package say what is missing
    (the browser test fails without Chromium; the PostgreSQL test skips without PostgreSQL).
    """
    missing = [name for name, path in SYSTEM_PACKAGES.items() if not glob.glob(path)]
    if not missing or os.geteuid() != 0 or not Path("/usr/bin/apt-get").exists():
        return
    print(f"dev.py: installing Debian's {' and '.join(missing)} for the tests", flush=True)
    quiet = {"stdout": subprocess.DEVNULL}
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(["apt-get", "update", "-qq"], env=env, **quiet)
    if done.returncode == 0:
        done = subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env=env, **quiet)
    still = [name for name in missing if not glob.glob(SYSTEM_PACKAGES[name])]
    if still:
        print(f"dev.py: could not install {' and '.join(still)} (apt-get exit {done.returncode}); "
              f"the tests that need it will say so", flush=True)


def course_env() -> dict[str, str]:
    """Environment for everything the course runs: Keras on PyTorch, caches inside the repo."""
    env = dict(os.environ)
    env["KERAS_BACKEND"] = "torch"
    env.setdefault("KERAS_HOME", str(ROOT / ".keras"))
    env.setdefault("MPLBACKEND", "Agg")   # tests and scripts draw off-screen
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONHASHSEED"] = "0"
    return env


def run(args: list[str], env: dict[str, str] | None = None) -> int:
    return subprocess.run(args, cwd=ROOT, env=env or course_env()).returncode


def main(argv: list[str]) -> int:
    commands = {"book", "test", "setup"}
    if not argv or argv[0] not in commands:
        print(f"usage: python3 dev.py {{{'|'.join(sorted(commands))}}} [args...]", file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    setup()
    if command == "setup":
        return 0
    if command == "test":
        ensure_system_packages()
        return run([str(PY), "-m", "pytest", *rest])
    # The pages' kernels pick matplotlib's inline backend themselves; Agg would hide their figures.
    env = course_env()
    env.pop("MPLBACKEND", None)
    # -n: nitpicky, -W: warnings are errors, --keep-going: report every warning at once.
    return run([str(VENV / "bin" / "jupyter-book"), "build", "book", "--builder", "html",
                "-n", "-W", "--keep-going", *rest], env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
