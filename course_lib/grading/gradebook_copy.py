"""The parallel grader's gradebook copies: a template of one assignment for the workers, and each
worker's results copied back, field by field, into the one real gradebook (which only the parent touches).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from .execute import COMMENT

if TYPE_CHECKING:
    from .parallel_worker import SubmissionResult

__all__ = ["template_gradebook", "write_result"]


def template_gradebook(db_url: str, course_id: str, assignment: str, path: Path) -> None:
    """Copy one assignment (notebooks, grade/solution/task/source cells, due date) into a new SQLite gradebook."""
    import sqlite3

    from nbgrader.api import Gradebook, MissingEntry, get_alembic_version
    from sqlalchemy import text

    with Gradebook(db_url, course_id) as src:
        try:
            a = src.find_assignment(assignment)
        except MissingEntry:
            raise ValueError(f"expected assignment {assignment!r} in the gradebook; run "
                             f"`nbgrader generate_assignment {assignment}` first") from None
        # A new gradebook asks the `alembic` command for the schema version (a subprocess, about 1 s);
        # the new one has the course gradebook's schema, so it gets that gradebook's version.
        try:
            version = src.db.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:                       # noqa: BLE001 - no such table: ask alembic after all
            src.db.rollback()
            version = None
        version = version or get_alembic_version()
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
            db.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (version,))
        _copy_assignment(a, Gradebook(f"sqlite:///{path}", course_id))


def _copy_assignment(a, dst) -> None:
    with dst:
        dst.add_assignment(a.name, duedate=a.duedate)
        for nb in a.notebooks:
            dst.add_notebook(nb.name, a.name)
            for c in nb.grade_cells:
                dst.add_grade_cell(c.name, nb.name, a.name, max_score=c.max_score, cell_type=c.cell_type)
            for c in nb.solution_cells:
                dst.add_solution_cell(c.name, nb.name, a.name)
            for c in nb.task_cells:
                dst.add_task_cell(c.name, nb.name, a.name, max_score=c.max_score, cell_type=c.cell_type)
            for c in nb.source_cells:
                dst.add_source_cell(c.name, nb.name, a.name, source=c.source, cell_type=c.cell_type,
                                    locked=c.locked, checksum=c.checksum)


def write_result(gb, assignment: str, result: SubmissionResult) -> None:
    """The single writer: copy one worker's result into the real gradebook, field by field."""
    if not result.notebooks and result.timestamp is None and not result.ok:
        return                                   # failed before nbgrader recorded anything
    gb.update_or_create_student(result.student)
    if result.timestamp is not None:
        submission = gb.update_or_create_submission(assignment, result.student, timestamp=result.timestamp)
    else:
        submission = gb.update_or_create_submission(assignment, result.student)
    for nb in submission.notebooks:
        theirs = result.notebooks.get(nb.name)
        if theirs is None:
            continue
        for grade in nb.grades:
            if grade.name in theirs["grades"]:
                grade.auto_score, grade.needs_manual_grade = theirs["grades"][grade.name]
        for comment in nb.comments:
            if comment.name in theirs["comments"]:
                auto, manual = theirs["comments"][comment.name]
                comment.auto_comment = auto
                if not comment.manual_comment or comment.manual_comment.startswith(COMMENT):
                    comment.manual_comment = manual
        nb.late_submission_penalty = theirs["late_penalty"]
    gb.db.commit()
