"""Grading throughput: plain ``nbgrader autograde``, the course's, and the parallel command, on one class.

    .venv/bin/python benchmarks/grading_throughput.py [--submissions 40] [--workers N] [--repeat 1]
                                                      [--assignment 02_lstm] [--no-plain] [--save]
                                                      [--baseline-checkout DIR]

It copies the course into a temporary directory, runs ``nbgrader generate_assignment``, and hands in
``--submissions`` notebooks: a mix of the instructor's solution (correct), the untouched release
and the course's practice mistakes (wrong), and notebooks with a cell that crashes the process
(segfault, ``os._exit``). Three copies of the class are graded, one command each:

- ``plain``: ``nbgrader autograde`` with nbgrader's own preprocessors, so its ``Execute`` runs each
  notebook in a fresh kernel that imports PyTorch again, as nbgrader does out of the box (and with
  no sandbox: this is the baseline, not a way to grade);
- ``course``: ``nbgrader autograde`` with the course's ``nbgrader_config.py``: trusted grading, one
  submission after another, from one sandbox that imports PyTorch once;
- ``parallel``: ``python -m course_lib.grading.cli``, the same trusted grading on ``--workers`` Dask
  workers (default: the cores).

The ``course`` and ``parallel`` gradebooks must agree cell by cell (the script stops if they do
not); the ``plain`` one is compared on the submissions it could grade. It prints the wall time of
each, the submissions per minute and the throughput ratios (medians over ``--repeat`` rounds).
The issue's target: at least 3x plain ``nbgrader autograde`` on 2 cores. ``--save`` also writes the
output to ``benchmarks/results/grading_throughput.txt`` for the book. Run it on a quiet machine.

``--baseline-checkout DIR`` also grades, side by side, the same mix of submissions with another
checkout of the course (an older commit, with its own ``.venv``): its ``nbgrader_config.py``, its
solutions, its ``course_lib``. Each round runs the two checkouts' ``course`` commands back to back,
then their ``parallel`` commands (which goes first alternates), and it prints this checkout's time
over the baseline's for each, so a change's cost is a ratio measured under the same load.
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

from record import recorded

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COURSE_ID = "rnn-to-lstm"
TARGET = 3.0         # parallel / plain nbgrader autograde, on 2 cores

#: Appended to the copy graded by ``plain``: nbgrader's own preprocessors in place of the course's.
PLAIN_CONFIG = """
# --- benchmark only: nbgrader as shipped (Execute runs the notebook in a fresh kernel; no sandbox)
from nbgrader.converters import Autograde as _Autograde
c.Autograde.sanitize_preprocessors = _Autograde.class_traits()["sanitize_preprocessors"].default()
c.Autograde.autograde_preprocessors = _Autograde.class_traits()["autograde_preprocessors"].default()
"""


def _env(course: Path, bin_dir: Path = BIN) -> dict:
    return dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", KERAS_BACKEND="torch",
                MPLBACKEND="Agg", KERAS_HOME=str(course / ".keras"))


def _run(course: Path, *cmd: str, ok=(0,)) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(list(cmd), cwd=course, env=_env(course, Path(cmd[0]).parent), capture_output=True,
                          text=True)
    if done.returncode not in ok:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return time.perf_counter() - t0


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _mistakes(assignment: str, solution, release, root: Path = ROOT) -> list:
    """The practice mistakes of tests/fixtures/submissions/<assignment>, as notebooks (else: none)."""
    answers = {_meta(c)["grade_id"]: c.source for c in solution.cells if _meta(c).get("solution")}
    out = []
    for path in sorted((root / "tests" / "fixtures" / "submissions" / assignment).glob("*.py")):
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


def make_class(course: Path, assignment: str, n: int, root: Path = ROOT) -> dict[str, int]:
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
    wrong = [release, *_mistakes(assignment, solution, release, root)]
    kinds = {"correct": 0, "wrong": 0, "crashing": 0}
    for k in range(n):           # about half correct, a third wrong, the rest crashing
        kind = "correct" if k % 6 in (0, 2, 4) else "wrong" if k % 6 in (1, 3) else "crashing"
        pool = {"correct": [correct], "wrong": wrong, "crashing": crashing}[kind]
        dest = course / "submitted" / f"student_{k:03d}" / assignment / sol_path.name
        dest.parent.mkdir(parents=True)
        nbformat.write(pool[kinds[kind] % len(pool)], dest)      # each kind cycles through its own pool
        kinds[kind] += 1
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


def graded(course: Path, assignment: str) -> set[str]:
    """Students whose graded notebook nbgrader wrote (a submission it failed to grade has none)."""
    return {p.parent.parent.name for p in (course / "autograded").glob(f"*/{assignment}/*.ipynb")}


def compare_plain(plain: Path, par: Path, assignment: str) -> str:
    """How plain nbgrader's scores differ from the parallel command's, on the submissions it graded."""
    p, q = dump(plain / "gradebook.db", assignment), dump(par / "gradebook.db", assignment)
    done = graded(plain, assignment)
    missed = sorted(graded(par, assignment) - done)
    differ = sorted({k[0] for k in q if len(k) == 3 and k[0] in done and p.get(k, (None,))[0] != q[k][0]})
    return (f"plain nbgrader could not grade {len(missed)} submission(s) (its kernel died: "
            f"{', '.join(missed) or 'none'}); on the {len(done)} it graded, scores differ for "
            f"{len(differ)}{': ' + ', '.join(differ) if differ else ''}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--workers", type=int, default=None, help="parallel workers (default: cores)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the median is printed (default 1)")
    parser.add_argument("--assignment", default="02_lstm")
    parser.add_argument("--no-plain", action="store_true", help="skip plain nbgrader (the slowest run)")
    parser.add_argument("--save", action="store_true", help="also write benchmarks/results/grading_throughput.txt")
    parser.add_argument("--baseline-checkout", type=Path, default=None, metavar="DIR",
                        help="also time another checkout of the course (with its own .venv) side by side, "
                             "and print this checkout's time over its time")
    args = parser.parse_args(argv)
    if args.baseline_checkout is not None:
        bc = args.baseline_checkout.resolve()
        if not (bc / ".venv" / "bin" / "nbgrader").is_file() or not (bc / "nbgrader_config.py").is_file():
            parser.error(f"expected a course checkout with nbgrader_config.py and .venv/bin/nbgrader for "
                         f"--baseline-checkout, got {str(args.baseline_checkout)!r}")
        args.baseline_checkout = bc
    with recorded("grading_throughput", args.save):
        return run(args)


def _make_base(tmp: Path, name: str, checkout: Path, bin_dir: Path, a: str, n: int) -> tuple[Path, dict]:
    """A graded-nowhere copy of the class for one checkout: its config, its release, its mix of submissions."""
    base = tmp / name
    base.mkdir()
    shutil.copy(checkout / "nbgrader_config.py", base)
    shutil.copytree(checkout / "solutions" / a, base / "solutions" / a)
    _run(base, str(bin_dir / "nbgrader"), "generate_assignment", a)
    return base, make_class(base, a, n, checkout)


def _grade(copies: dict[str, Path], kind: str, a: str, workers: int, bin_dir: Path) -> float:
    if kind == "plain":
        with open(copies["plain"] / "nbgrader_config.py", "a", encoding="utf-8") as f:
            f.write(PLAIN_CONFIG)
        return _run(copies["plain"], str(bin_dir / "nbgrader"), "autograde", a, ok=(0, 1))
    if kind == "course":
        return _run(copies["course"], str(bin_dir / "nbgrader"), "autograde", a)
    return _run(copies["parallel"], str(bin_dir / "python"), "-m", "course_lib.grading.cli", a,
                "--no-progress", "--workers", str(workers), ok=(0, 1))


def _same_gradebooks(copies: dict[str, Path], a: str, r: int, label: str) -> int:
    s, p = dump(copies["course"] / "gradebook.db", a), dump(copies["parallel"] / "gradebook.db", a)
    if s != p:
        diff = sorted(k for k in set(s) | set(p) if s.get(k) != p.get(k))[:10]
        sys.exit(f"round {r + 1}{label}: the course's and the parallel gradebooks differ, e.g. at {diff}")
    return len(s)


def run(args) -> int:
    a, n = args.assignment, args.submissions
    cores = len(os.sched_getaffinity(0))
    workers = args.workers or cores
    kinds_run = ["course", "parallel"] if args.no_plain else ["plain", "course", "parallel"]
    baseline = getattr(args, "baseline_checkout", None)
    times: dict[str, list[float]] = {k: [] for k in kinds_run}
    base_times: dict[str, list[float]] = {k: [] for k in ("course", "parallel")}
    with tempfile.TemporaryDirectory(prefix="grading-throughput-") as tmp:
        base, kinds = _make_base(Path(tmp), "base", ROOT, BIN, a, n)
        print(f"{cores} cores, {workers} parallel workers; {n} submissions of {a}: "
              + ", ".join(f"{v} {k}" for k, v in kinds.items()), flush=True)
        if baseline is not None:
            bbin = baseline / ".venv" / "bin"
            bbase, bkinds = _make_base(Path(tmp), "baseline", baseline, bbin, a, n)
            print(f"baseline: {baseline} ({bkinds == kinds and 'the same mix' or bkinds})", flush=True)
        for r in range(args.repeat):
            copies = {k: Path(tmp) / f"{k}{r}" for k in kinds_run}
            for course in copies.values():
                shutil.copytree(base, course)
            bcopies = {}
            if baseline is not None:
                bcopies = {k: Path(tmp) / f"baseline-{k}{r}" for k in ("course", "parallel")}
                for course in bcopies.values():
                    shutil.copytree(bbase, course)
            for k in kinds_run:
                if baseline is not None and k != "plain":
                    first_this = (r + (k == "parallel")) % 2 == 0        # who goes first alternates
                    order = ["this", "baseline"] if first_this else ["baseline", "this"]
                    for who in order:
                        if who == "this":
                            times[k].append(_grade(copies, k, a, workers, BIN))
                        else:
                            base_times[k].append(_grade(bcopies, k, a, workers, bbin))
                else:
                    times[k].append(_grade(copies, k, a, workers, BIN))
            count = _same_gradebooks(copies, a, r, "")
            line = f"round {r + 1}: " + ", ".join(f"{k} {times[k][-1]:.1f} s" for k in kinds_run)
            if baseline is not None:
                _same_gradebooks(bcopies, a, r, " (baseline)")
                line += "; baseline: " + ", ".join(f"{k} {base_times[k][-1]:.1f} s" for k in base_times)
            print(line + f"; course and parallel gradebooks equal ({count} grades and comments)", flush=True)
            if "plain" in copies:
                print(f"round {r + 1}: {compare_plain(copies['plain'], copies['parallel'], a)}", flush=True)
    t = {k: statistics.median(v) for k, v in times.items()}
    labels = {"plain": "nbgrader autograde, nbgrader's Execute", "course": "nbgrader autograde, course config",
              "parallel": f"course_lib.grading.cli, {workers} workers"}
    print(f"\n{'command':42s} {'wall s':>8s} {'submissions/min':>16s}")
    for k in kinds_run:
        print(f"{labels[k]:42s} {t[k]:8.1f} {60 * n / t[k]:16.1f}")
    print(f"parallel / course's sequential autograde: {t['course'] / t['parallel']:.2f}x "
          f"(at most the number of workers: both keep PyTorch imported)")
    if "plain" in t:
        ratio = t["plain"] / t["parallel"]
        print(f"parallel / plain nbgrader autograde: {ratio:.2f}x (target >= {TARGET:g}x on 2 cores: "
              f"{'met' if ratio >= TARGET else 'NOT met'})")
    if baseline is not None:
        load = open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "?"
        print(f"\nthis checkout / baseline {baseline} (medians of {args.repeat} interleaved round(s); "
              f"load average now {load}):")
        for k in ("course", "parallel"):
            b = statistics.median(base_times[k])
            print(f"  {labels[k]:42s} {t[k]:6.1f} s / {b:6.1f} s = {t[k] / b:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
