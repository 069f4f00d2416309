"""How long from opening an exercise to a validated result?

    .venv/bin/python benchmarks/student_loop.py [assignment ...] [--repeats 3]

For each assignment (default: every folder of ``solutions/``) it does what a student's notebook
server does: start a fresh Python kernel with ``jupyter_client``, then run the solution
notebook's code cells in order, as a student who has solved the exercise would (hidden tests
removed, as in the student's copy). It times:

- **kernel**   starting the kernel until it answers;
- **imports**  the first code cell (``import torch`` and ``course_lib``);
- **check**    every cell that calls ``checkers.check_*``: from sending the cell to its reply, i.e.
               how long a student waits for the checker's verdict after running the cell;
- **total**    kernel start to the last cell's reply.

Target (issue 6): every check answers in under 3 s after its cell runs. Each figure is the
median over ``--repeats`` fresh kernels.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dev import course_env  # noqa: E402  (the environment the course's notebooks run in)
from record import recorded  # noqa: E402

CHECK_TARGET_S = 3.0
HIDDEN = re.compile(r"^### BEGIN HIDDEN TESTS$.*?^### END HIDDEN TESTS$\n?", re.S | re.M)
CHECK = re.compile(r"\bcheckers\.check_\w+\(")


def student_cells(notebook: Path) -> list[tuple[str, str]]:
    """(name, source) of each code cell as the student runs it: the solution, hidden tests removed."""
    nb = nbformat.read(notebook, as_version=4)
    cells = []
    for k, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        name = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {k}"
        cells.append((name, HIDDEN.sub("", cell.source)))
    return cells


def run_once(cells: list[tuple[str, str]], cwd: Path) -> dict[str, float]:
    """Seconds for kernel start, each cell, and the total, in one fresh kernel."""
    start = time.perf_counter()
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(cwd), env=course_env())
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        times = {"kernel": time.perf_counter() - start}
        for name, source in cells:
            sent = time.perf_counter()
            reply = client.execute_interactive(source, timeout=300, output_hook=lambda msg: None)
            times[name] = time.perf_counter() - sent
            if reply["content"]["status"] != "ok":
                raise SystemExit(f"student_loop: cell {name!r} of {cwd.name} failed: "
                                 f"{reply['content'].get('ename')}: {reply['content'].get('evalue')}")
        times["total"] = time.perf_counter() - start
        return times
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="folders of solutions/ (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh kernels per assignment")
    parser.add_argument("--save", action="store_true", help="also write benchmarks/results/student_loop.txt")
    args = parser.parse_args()
    with recorded("student_loop", args.save):
        run(args)


def run(args) -> None:
    names = args.assignments or sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
    print(f"median of {args.repeats} fresh kernels; check target < {CHECK_TARGET_S:.0f} s\n")
    print(f"{'assignment':18} {'kernel s':>8} {'imports s':>9} {'checks':>6} {'slowest check s':>15} "
          f"{'total s':>8}", flush=True)
    slowest_overall = 0.0
    for name in names:
        notebook = next((ROOT / "solutions" / name).glob("*.ipynb"))
        cells = student_cells(notebook)
        runs = [run_once(cells, notebook.parent) for _ in range(args.repeats)]
        med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        checks = [cell for cell, source in cells if CHECK.search(source)]
        slowest = max((med[c] for c in checks), default=0.0)
        slowest_overall = max(slowest_overall, slowest)
        print(f"{name:18} {med['kernel']:8.2f} {med[cells[0][0]]:9.2f} {len(checks):6d} {slowest:15.2f} "
              f"{med['total']:8.2f}", flush=True)
    verdict = "met" if slowest_overall < CHECK_TARGET_S else "missed"
    print(f"\nslowest check: {slowest_overall:.2f} s after its cell runs (target < {CHECK_TARGET_S:.0f} s: {verdict})")


if __name__ == "__main__":
    main()
