#!/usr/bin/env python3
"""Make a class of practice submissions, to rehearse a grading round or to test the graders.

    python tools/make_submissions.py                 # every assignment, into ./submitted
    python tools/make_submissions.py 02_lstm --course /tmp/course

For each assignment it writes ``submitted/<student>/<assignment>/<notebook>.ipynb`` for:

- ``solution``   the instructor's notebook from ``solutions/``, handed in as it is (full marks);
- ``untouched``  the student version from ``exercises/``, handed in without a change (zero);
- one student per file in ``tests/fixtures/submissions/<assignment>/``: the student version with
  every answer cell filled in from the solution, except the cells the file replaces.

A fixture file is Python split into cells by ``# %% <grade_id>`` lines, after a header of
comment lines that says what the student got wrong and what that should cost::

    # The layer restarts every step from h0, so the hidden state is never carried forward.
    # expect: rnn_layer_check=0
    # message: the hidden state h is not carried from one step to the next

    # %% rnn_layer
    def rnn_layer(xs, h0, w_ih, w_hh, b_ih, b_hh):
        ...

``expect`` lists the graded cells that should score below full marks (any not listed get full
marks); ``message`` is what the feedback must say. A ``# %% <grade_id>`` cell of a written answer
holds Markdown. ``tests/casefiles.py`` reads these files (its docstring is the whole format).
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from casefiles import Case, read_cases  # noqa: E402 - the fixture files' one parser, beside the fixtures

FIXTURES = ROOT / "tests" / "fixtures" / "submissions"
SOLUTION_MARKERS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


def read_fixtures(assignment: str, fixtures: Path = FIXTURES) -> list[Case]:
    """Every fixture of one assignment, sorted by name."""
    return read_cases(fixtures / assignment)


def _nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _without_markers(source: str) -> str:
    """The solution as a student would have typed it: no BEGIN/END SOLUTION lines."""
    return "\n".join(line for line in source.splitlines() if not SOLUTION_MARKERS.match(line))


def fill_in(release: nbformat.NotebookNode, solution: nbformat.NotebookNode,
            replacements: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """The release notebook with every answer cell written from the solution, except ``replacements``."""
    replacements = dict(replacements or {})
    answers = {_nbgrader(c)["grade_id"]: c.source for c in solution.cells if _nbgrader(c).get("solution")}
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        meta = _nbgrader(cell)
        if not meta.get("solution"):
            continue
        grade_id = meta["grade_id"]
        cell.source = replacements.pop(grade_id) if grade_id in replacements else _without_markers(answers[grade_id])
    if replacements:
        raise ValueError(f"no answer cell with grade_id {sorted(replacements)} in the notebook")
    return nb


def _notebook_path(root: Path, step: str, assignment: str) -> Path:
    found = sorted((root / step / assignment).glob("*.ipynb"))
    if len(found) != 1:
        raise ValueError(f"expected one notebook in {root / step / assignment}, found {len(found)}")
    return found[0]


def make_submissions(course: Path = ROOT, assignments: list[str] | None = None,
                     fixtures: Path = FIXTURES) -> list[Case]:
    """Write the practice submissions into ``course/submitted``; return the fixtures used."""
    course = Path(course)
    assignments = assignments or sorted(p.name for p in (course / "solutions").iterdir() if p.is_dir())
    used = []
    for assignment in assignments:
        sol_path = _notebook_path(course, "solutions", assignment)
        rel_path = _notebook_path(course, "exercises", assignment)
        solution, release = nbformat.read(sol_path, as_version=4), nbformat.read(rel_path, as_version=4)
        students = {"solution": solution, "untouched": release}
        for fx in read_fixtures(assignment, fixtures):
            students[fx.student] = fill_in(release, solution, fx.replace)
            used.append(fx)
        for student, nb in students.items():
            out = course / "submitted" / student / assignment / sol_path.name
            out.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, out)
    return used


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*", help="assignment names (default: all in solutions/)")
    parser.add_argument("--course", type=Path, default=ROOT, help="course root (default: this repository)")
    args = parser.parse_args(argv)
    for fx in make_submissions(args.course, args.assignments or None):
        print(f"{fx.assignment}/{fx.student}: {fx.description}")
    print(f"plus 'solution' and 'untouched' for each assignment, in {args.course / 'submitted'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
