"""``python -m course_lib.grading.cli ASSIGNMENT``: grade every submission of an assignment in parallel.

    python -m course_lib.grading.cli 02_lstm                       # N = cores local workers
    python -m course_lib.grading.cli 02_lstm --workers 8
    python -m course_lib.grading.cli 02_lstm --scheduler tcp://host:8786
    python -m course_lib.grading.cli 02_lstm --db-url postgresql://user@host/course

Run it from the course root (or pass ``--root``), with ``KERAS_BACKEND=torch`` set, as for
``nbgrader autograde``. It lands the same grades in the same gradebook; see
:mod:`course_lib.grading.parallel`.
"""
from __future__ import annotations

import argparse
import sys

from .parallel import grade_assignment, skip_iri_grammar


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.grading.cli",
                                     description="Autograde every submission of an assignment in parallel.")
    parser.add_argument("assignment", help="assignment name, e.g. 02_lstm")
    parser.add_argument("--root", default=".", help="course directory with nbgrader_config.py (default: .)")
    parser.add_argument("--workers", type=int, default=None, help="local worker processes (default: cores)")
    parser.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    parser.add_argument("--db-url", default=None, help="gradebook SQLAlchemy URL (default: the course's)")
    parser.add_argument("--student", action="append", default=None, help="grade only this student (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    skip_iri_grammar()                         # before nbgrader imports jsonschema: 2.8 s saved
    try:
        summary = grade_assignment(args.assignment, root=args.root, students=args.student, workers=args.workers,
                                   scheduler=args.scheduler, db_url=args.db_url, progress=not args.no_progress)
    except ValueError as exc:
        parser.error(str(exc))
    except KeyboardInterrupt:
        print(f"{args.assignment}: interrupted; the submissions graded so far are in the gradebook "
              f"(run the command again to grade them all)", file=sys.stderr)
        return 130
    print(f"{args.assignment}: {len(summary.graded)} graded, {len(summary.failed)} failed "
          f"in {summary.seconds:.1f} s")
    for line in summary.sandbox:
        if line.startswith("NOT"):
            print(f"  sandbox: {line}")        # as nbgrader's log says it: what the sandbox could not isolate
    for student, reason in summary.failed.items():
        print(f"  FAILED {student}: {reason.splitlines()[-1] if reason else ''}")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
