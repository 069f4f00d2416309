"""How long does ``nbgrader autograde`` take per student notebook, here?

    .venv/bin/python benchmarks/autograde_speed.py [--students 5] [assignment ...]

It copies the course into a temporary directory, runs ``nbgrader generate_assignment``, hands in
the instructor's solution ``--students`` times for each assignment (a solved notebook runs every
cell, the slowest case), and times one ``nbgrader autograde <assignment>`` per assignment: wall
time and CPU time (nbgrader and every process it starts), divided by the number of notebooks. The
per-notebook figure includes a share of nbgrader's own start-up (a few seconds per command), so
it falls as ``--students`` grows. The course's aim: under 10 s of wall time per notebook on a
2-core machine. The machine may be shared: the CPU time is the steadier number.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
AIM_S = 10.0


def nbgrader(course: Path, *args: str) -> None:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", KERAS_BACKEND="torch",
               MPLBACKEND="Agg", KERAS_HOME=str(course / ".keras"))
    done = subprocess.run([str(BIN / "nbgrader"), *args], cwd=course, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"nbgrader {' '.join(args)} failed:\n{done.stderr[-4000:]}")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*", help="assignment names (default: all in solutions/)")
    parser.add_argument("--students", type=int, default=5, help="solved notebooks per assignment (default 5)")
    args = parser.parse_args(argv)
    assignments = args.assignments or sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
    print(f"{os.cpu_count()} CPU cores; {args.students} solved notebooks per assignment")
    with tempfile.TemporaryDirectory(prefix="autograde-speed-") as tmp:
        course = Path(tmp)
        shutil.copy(ROOT / "nbgrader_config.py", course)
        shutil.copytree(ROOT / "solutions", course / "solutions")
        nbgrader(course, "generate_assignment", "*")
        print(f"{'assignment':18s} {'wall s/notebook':>16s} {'CPU s/notebook':>15s}")
        worst = 0.0
        for assignment in assignments:
            (notebook,) = (course / "solutions" / assignment).glob("*.ipynb")
            for k in range(args.students):
                dest = course / "submitted" / f"student_{k}" / assignment
                dest.mkdir(parents=True)
                shutil.copy(notebook, dest)
            cpu0, t0 = children_cpu(), time.perf_counter()
            nbgrader(course, "autograde", assignment)
            wall, cpu = (time.perf_counter() - t0) / args.students, (children_cpu() - cpu0) / args.students
            worst = max(worst, wall)
            print(f"{assignment:18s} {wall:16.1f} {cpu:15.1f}")
    verdict = "within" if worst < AIM_S else "ABOVE"
    print(f"slowest: {worst:.1f} s per notebook, {verdict} the aim of {AIM_S:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
