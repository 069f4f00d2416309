"""``python -m course_lib.grading.cli ASSIGNMENT``: grade every submission of an assignment in parallel.

    python -m course_lib.grading.cli 02_lstm                       # N = cores local workers
    python -m course_lib.grading.cli 02_lstm --workers 8
    python -m course_lib.grading.cli 02_lstm --scheduler tcp://host:8786
    python -m course_lib.grading.cli 02_lstm --db-url postgresql://user@host/course
    COURSE_GRADEBOOK_URL=postgresql://user:secret@host/course python -m course_lib.grading.cli 02_lstm
    python -m course_lib.grading.cli 02_lstm --db-url-file /root/gradebook-url     # a file only root reads

Run it from the course root (or pass ``--root``), with ``KERAS_BACKEND=torch`` set, as for
``nbgrader autograde``. It lands the same grades in the same gradebook; see
:mod:`course_lib.grading.parallel`. A password never belongs on the command line (every process
of the machine can read command lines): give it in ``COURSE_GRADEBOOK_URL`` (removed from the
environment as soon as it is read, so no worker or sandbox inherits it), in a file, or in
PostgreSQL's own ``PGPASSFILE`` with a URL that has no password.
"""
from __future__ import annotations

import argparse
import os
import sys
from urllib.parse import urlsplit

from .parallel import grade_assignment
from .startup import skip_iri_grammar


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.grading.cli",
                                     description="Autograde every submission of an assignment in parallel.")
    parser.add_argument("assignment", help="assignment name, e.g. 02_lstm")
    parser.add_argument("--root", default=".", help="course directory with nbgrader_config.py (default: .)")
    parser.add_argument("--workers", type=int, default=None, help="local worker processes (default: cores)")
    parser.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    parser.add_argument("--db-url", default=None, help="gradebook SQLAlchemy URL without a password (default: the "
                                                       "course's); for one with a password see --db-url-file")
    parser.add_argument("--db-url-file", default=None, help="a file holding the gradebook URL (may hold a password; "
                                                            "or set COURSE_GRADEBOOK_URL)")
    parser.add_argument("--student", action="append", default=None, help="grade only this student (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    skip_iri_grammar()                         # before nbgrader imports jsonschema: 2.8 s saved
    try:
        db_url = gradebook_url(args.db_url, args.db_url_file)
        summary = grade_assignment(args.assignment, root=args.root, students=args.student, workers=args.workers,
                                   scheduler=args.scheduler, db_url=db_url, progress=not args.no_progress)
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


ENV_URL = "COURSE_GRADEBOOK_URL"


def gradebook_url(given: str | None, path: str | None, environ: dict = os.environ) -> str | None:
    """The gradebook URL from ``--db-url``, ``--db-url-file`` or ``COURSE_GRADEBOOK_URL`` (None: the course's).

    The environment variable is removed once read, so that nothing started later inherits it. A
    password on the command line is refused: anyone on the machine can read command lines.
    """
    from_env = environ.pop(ENV_URL, None)
    if given and urlsplit(given).password:
        raise ValueError(f"expected a --db-url without a password (anyone on this machine can read command lines); "
                         f"put the URL in a file for --db-url-file, in {ENV_URL}, or the password in PGPASSFILE")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read().strip()
        except OSError as exc:
            raise ValueError(f"expected a readable file with the gradebook URL for --db-url-file, got {path!r} "
                             f"({exc.strerror})") from None
        if not text:
            raise ValueError(f"expected the gradebook URL in {path!r}, the file is empty")
        return text
    return given or from_env or None


if __name__ == "__main__":
    sys.exit(main())
