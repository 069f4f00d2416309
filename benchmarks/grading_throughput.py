"""Grading throughput: plain sequential ``nbgrader autograde`` against the parallel command, same grades.

    .venv/bin/python benchmarks/grading_throughput.py [--submissions 40] [--workers N] [--repeat 1]
                                                      [--assignment 02_lstm]

It copies the course into a temporary directory, runs ``nbgrader generate_assignment``, and hands in
``--submissions`` notebooks: a mix of the instructor's solution (correct), the untouched release
and the course's practice mistakes (wrong), and notebooks with a cell that crashes the process
(segfault, ``os._exit``). The class is copied; one copy is graded with ``nbgrader autograde
<assignment>``, the other with ``python -m course_lib.grading.cli <assignment>``; the two gradebooks
are compared cell by cell (the script stops if they differ), and it prints the wall time of each,
the submissions per minute and the throughput ratio (median over ``--repeat`` rounds). The issue's
target: at least 3x on 2 cores. The machine may be shared: run it when it is quiet.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COURSE_ID = "rnn-to-lstm"


def _env(course: Path) -> dict:
    return dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", KERAS_BACKEND="torch",
                MPLBACKEND="Agg", KERAS_HOME=str(course / ".keras"))


def _run(course: Path, *cmd: str, ok=(0,)) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(list(cmd), cwd=course, env=_env(course), capture_output=True, text=True)
    if done.returncode not in ok:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return time.perf_counter() - t0


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _mistakes(assignment: str, solution, release) -> list:
    """The practice mistakes of tests/fixtures/submissions/<assignment>, as notebooks (else: none)."""
    answers = {_meta(c)["grade_id"]: c.source for c in solution.cells if _meta(c).get("solution")}
    out = []
    for path in sorted((ROOT / "tests" / "fixtures" / "submissions" / assignment).glob("*.py")):
        replace, current = {}, None
        for line in path.read_text().splitlines():
            if line.startswith("# %% "):
                current = line[5:].strip()
                replace[current] = []
            elif current is not None:
                replace[current].append(line)
        nb = nbformat.from_dict(release)
        for cell in nb.cells:
            gid = _meta(cell).get("grade_id")
            if _meta(cell).get("solution"):
                source = "\n".join(replace[gid]) if gid in replace else answers[gid]
                cell.source = "\n".join(l for l in source.splitlines() if "### BEGIN" not in l and "### END" not in l)
        out.append(nb)
    return out


def make_class(course: Path, assignment: str, n: int) -> dict[str, int]:
    (sol_path,) = (course / "solutions" / assignment).glob("*.ipynb")
    (rel_path,) = (course / "exercises" / assignment).glob("*.ipynb")
    solution, release = nbformat.read(sol_path, as_version=4), nbformat.read(rel_path, as_version=4)
    correct = nbformat.from_dict(release)
    answers = {_meta(c)["grade_id"]: c.source for c in solution.cells if _meta(c).get("solution")}
    for cell in correct.cells:
        if _meta(cell).get("solution"):
            cell.source = "\n".join(l for l in answers[_meta(cell)["grade_id"]].splitlines() if "### " not in l)
    crashing = []
    for code in ("import ctypes\nctypes.string_at(0)", "import os\nos._exit(3)"):
        nb = nbformat.from_dict(correct)
        nb.cells.insert(len(nb.cells) // 2, nbformat.v4.new_code_cell(code))
        crashing.append(nb)
    wrong = [release, *_mistakes(assignment, solution, release)]
    kinds = {"correct": 0, "wrong": 0, "crashing": 0}
    for k in range(n):           # about half correct, a third wrong, the rest crashing
        kind = "correct" if k % 6 in (0, 2, 4) else "wrong" if k % 6 in (1, 3) else "crashing"
        pool = {"correct": [correct], "wrong": wrong, "crashing": crashing}[kind]
        kinds[kind] += 1
        dest = course / "submitted" / f"student_{k:03d}" / assignment / sol_path.name
        dest.parent.mkdir(parents=True)
        nbformat.write(pool[k % len(pool)], dest)
    return kinds


def dump(db: Path, assignment: str) -> dict:
    from nbgrader.api import Gradebook
    out = {}
    with Gradebook(f"sqlite:///{db}", COURSE_ID) as gb:
        for sub in gb.find_assignment(assignment).submissions:
            for nb in sub.notebooks:
                for g in nb.grades:
                    out[(sub.student.id, nb.name, g.name)] = (g.auto_score, g.needs_manual_grade)
                for c in nb.comments:
                    out[(sub.student.id, nb.name, c.name, "comment")] = (c.auto_comment, c.manual_comment)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--workers", type=int, default=None, help="parallel workers (default: cores)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the median is printed (default 1)")
    parser.add_argument("--assignment", default="02_lstm")
    args = parser.parse_args(argv)
    a = args.assignment
    cores = len(os.sched_getaffinity(0))
    seq_times, par_times = [], []
    with tempfile.TemporaryDirectory(prefix="grading-throughput-") as tmp:
        base = Path(tmp) / "base"
        base.mkdir()
        shutil.copy(ROOT / "nbgrader_config.py", base)
        shutil.copytree(ROOT / "solutions" / a, base / "solutions" / a)
        _run(base, str(BIN / "nbgrader"), "generate_assignment", a)
        kinds = make_class(base, a, args.submissions)
        print(f"{cores} cores; {args.submissions} submissions of {a}: " + ", ".join(f"{v} {k}" for k, v in kinds.items()))
        for r in range(args.repeat):
            seq, par = Path(tmp) / f"seq{r}", Path(tmp) / f"par{r}"
            shutil.copytree(base, seq)
            shutil.copytree(base, par)
            seq_times.append(_run(seq, str(BIN / "nbgrader"), "autograde", a))
            workers = ["--workers", str(args.workers)] if args.workers else ["--workers", str(cores)]
            par_times.append(_run(par, sys.executable, "-m", "course_lib.grading.cli", a, "--no-progress", *workers,
                                  ok=(0, 1)))
            s, p = dump(seq / "gradebook.db", a), dump(par / "gradebook.db", a)
            if s != p:
                diff = sorted(k for k in set(s) | set(p) if s.get(k) != p.get(k))[:10]
                sys.exit(f"round {r + 1}: the gradebooks differ, e.g. at {diff}")
            print(f"round {r + 1}: sequential {seq_times[-1]:.1f} s, parallel {par_times[-1]:.1f} s, "
                  f"same gradebook ({len(s)} cells and comments)")
    seq_t, par_t = statistics.median(seq_times), statistics.median(par_times)
    n = args.submissions
    print(f"{'command':34s} {'wall s':>8s} {'submissions/min':>16s}")
    print(f"{'nbgrader autograde (sequential)':34s} {seq_t:8.1f} {60 * n / seq_t:16.1f}")
    print(f"{'course_lib.grading.cli (parallel)':34s} {par_t:8.1f} {60 * n / par_t:16.1f}")
    ratio = seq_t / par_t
    print(f"throughput ratio: {ratio:.2f}x (target >= 3x on 2 cores) -> {'met' if ratio >= 3 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
