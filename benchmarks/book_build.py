"""How long does the book take to build, from nothing and unchanged?

    .venv/bin/python benchmarks/book_build.py [--keep]

It copies ``book/`` into a temporary directory (beside links to the rest of the repository, so
the pages' download links resolve), with no ``_build`` folder: no HTML and no Jupyter execution
cache. It then times two builds with the command ``python3 dev.py book`` runs
(``jupyter-book build --builder html -n -W --keep-going``):

- **cold**: every page's notebook is executed and the cache filled;
- **warm**: the same sources again, unchanged: every page comes from the execution cache.

Targets (issue 6): under 10 minutes cold and under 1 minute warm on 2 cores. The machine may
be shared; the script prints the load average beside the times.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dev import VENV, course_env  # noqa: E402  (the build environment dev.py uses)
from record import recorded  # noqa: E402

TARGETS_S = {"cold": 600.0, "warm": 60.0}
SKIP = {"book", ".git", ".venv"}


def make_copy(dest: Path) -> Path:
    """A repository-shaped folder at ``dest``: a fresh copy of book/ without _build, links to the rest."""
    shutil.copytree(ROOT / "book", dest / "book", ignore=shutil.ignore_patterns("_build", ".jupyter_cache"))
    for entry in ROOT.iterdir():
        if entry.name not in SKIP:
            (dest / entry.name).symlink_to(entry)
    return dest / "book"


def build(book: Path) -> float:
    """Seconds for one ``jupyter-book build`` of ``book``; raises if the build fails."""
    env = course_env()
    env.pop("MPLBACKEND", None)    # as dev.py: the pages' kernels choose matplotlib's inline backend
    command = [str(VENV / "bin" / "jupyter-book"), "build", str(book), "--builder", "html",
               "-n", "-W", "--keep-going"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=book.parent, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"book_build: the build failed (exit {done.returncode}), see above")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy and print its path")
    parser.add_argument("--save", action="store_true", help="also write benchmarks/results/book_build.txt")
    args = parser.parse_args()
    with recorded("book_build", args.save):
        run(args)


def run(args) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="book-build-"))
    try:
        book = make_copy(tmp)
        print(f"building a copy of book/ in {tmp} ({os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f})", flush=True)
        times = {}
        for name in ("cold", "warm"):
            times[name] = build(book)
            print(f"{name:5} build {times[name]:7.1f} s  (target < {TARGETS_S[name]:.0f} s: "
                  f"{'met' if times[name] < TARGETS_S[name] else 'missed'})", flush=True)
        print(f"warm / cold: {times['warm'] / times['cold']:.2f}; "
              f"load average now {os.getloadavg()[0]:.1f}")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
