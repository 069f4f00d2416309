"""``nbgrader export`` plugins that write the grade files Canvas and Moodle import.

    nbgrader export --exporter=course_lib.instructor.lms.CanvasExportPlugin --to canvas_grades.csv
    nbgrader export --exporter=course_lib.instructor.lms.MoodleExportPlugin --to moodle_grades.csv

nbgrader knows students by the id under ``submitted/``; a learning platform knows them by its own
ids. The *mapping file* (``lms_students.csv`` by default, set with ``c.CanvasExportPlugin.mapping``
or ``c.MoodleExportPlugin.mapping``) is a CSV file with a column ``nbgrader_id`` and the platform's
columns, under the platform's own names:

- Canvas: ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section`` (the first five columns
  of a gradebook exported from Canvas: copy them and add ``nbgrader_id``). ``ID`` or ``SIS User ID``
  or ``SIS Login ID`` must be filled in.
- Moodle: at least one of ``ID number``, ``Email address``, ``Username`` (the user field you choose
  under *Identify user by* when importing).

One row per student of the course. A student in the mapping who handed nothing in scores 0 (as
nbgrader's own CSV export does); a student in the gradebook who is missing from the mapping stops
the export with one sentence naming them, and nothing is written.

The score of an assignment is nbgrader's: autograded plus hand-graded points minus the late
penalty, never below 0. A column is named after the assignment (``02_lstm``) unless
``assignment_names`` says otherwise; in Canvas, ``"Name (12345)"`` with the Canvas assignment id in
parentheses updates that existing assignment, a new name creates a new one.
"""
from __future__ import annotations

import csv
import os
import tempfile

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import ExportPlugin
from traitlets import Dict, Unicode

__all__ = ["CanvasExportPlugin", "MoodleExportPlugin", "read_mapping", "CANVAS_COLUMNS", "MOODLE_COLUMNS"]

CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_IDS = ("ID", "SIS User ID", "SIS Login ID")
MOODLE_COLUMNS = ("ID number", "Email address", "Username")


def read_mapping(path: str) -> list[dict[str, str]]:
    """The rows of a mapping file; one sentence if it is missing or has no ``nbgrader_id`` column."""
    if not os.path.isfile(path):
        raise ValueError(f"expected a student mapping file (CSV with a column nbgrader_id and the platform's "
                         f"student columns) at {path!r}; see README, 'Grades for Canvas and Moodle'")
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
        header = rows[0].keys() if rows else []
    if "nbgrader_id" not in header:
        raise ValueError(f"expected a column nbgrader_id in the mapping file {path!r}, got columns {list(header)}")
    seen = set()
    for i, row in enumerate(rows, start=2):
        sid = (row.get("nbgrader_id") or "").strip()
        if not sid or sid in seen:
            raise ValueError(f"expected one row per student with a non-empty, unique nbgrader_id in {path!r}, "
                             f"line {i} has {sid!r}")
        seen.add(sid)
    return rows


class _PlatformExport(ExportPlugin):
    mapping = Unicode("lms_students.csv", help="CSV file: nbgrader_id and the platform's student columns.").tag(
        config=True)
    assignment_names = Dict(help="{nbgrader assignment: column name in the platform's file}").tag(config=True)
    default_to = "grades.csv"
    id_columns: tuple[str, ...] = ()
    all_columns: tuple[str, ...] = ()

    def export(self, gradebook: Gradebook) -> None:
        try:
            self._export(gradebook)
        except ValueError as exc:
            self.log.error("%s", exc)
            raise SystemExit(1) from None

    def _export(self, gradebook: Gradebook) -> None:
        rows = read_mapping(self.mapping)
        columns = [c for c in self.all_columns if rows and c in rows[0]]
        if not any(c in columns for c in self.id_columns):
            raise ValueError(f"expected at least one of the columns {', '.join(self.id_columns)} in the mapping "
                             f"file {self.mapping!r}, got {list(rows[0]) if rows else []}")
        for row in rows:
            if not any((row.get(c) or "").strip() for c in self.id_columns):
                raise ValueError(f"expected {' or '.join(self.id_columns)} for nbgrader_id "
                                 f"{row['nbgrader_id']!r} in {self.mapping!r}")
        mapped = {row["nbgrader_id"].strip() for row in rows}
        students = [str(s) for s in self.student] or [s.id for s in gradebook.students]
        unmapped = sorted(s for s in students if s not in mapped)
        if unmapped:
            raise ValueError(f"expected every student of the gradebook in the mapping file {self.mapping!r}; "
                             f"missing: {', '.join(unmapped)}")
        wanted = [str(a) for a in self.assignment]
        assignments = sorted((a for a in gradebook.assignments if not wanted or a.name in wanted),
                             key=lambda a: (a.duedate is None, a.duedate or 0, a.name))
        if wanted and len(assignments) != len(set(wanted)):
            missing = sorted(set(wanted) - {a.name for a in assignments})
            raise ValueError(f"expected the assignments {missing} in the gradebook")
        rows = [r for r in rows if not self.student or r["nbgrader_id"].strip() in students]
        header = columns + [self.assignment_names.get(a.name, a.name) for a in assignments]
        body = []
        for row in rows:
            sid = row["nbgrader_id"].strip()
            body.append([row.get(c, "") for c in columns] + [_score(gradebook, a.name, sid) for a in assignments])
        self._write(self.to or self.default_to, header, self._extra_rows(columns, assignments), body)
        self.log.info("Wrote %d students and %d assignments to %s", len(body), len(assignments),
                      self.to or self.default_to)

    def _extra_rows(self, columns, assignments) -> list[list[str]]:
        return []

    @staticmethod
    def _write(dest: str, header: list[str], extra: list[list[str]], body: list[list[str]]) -> None:
        folder = os.path.dirname(os.path.abspath(dest))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".export-", suffix=".csv")
        try:
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(header)
                w.writerows(extra)
                w.writerows(body)
            os.replace(tmp, dest)
        except BaseException:
            os.unlink(tmp)
            raise


def _score(gradebook: Gradebook, assignment: str, student: str) -> str:
    try:
        sub = gradebook.find_submission(assignment, student)
    except MissingEntry:
        return "0"
    return f"{max(0.0, sub.score - sub.late_submission_penalty):g}"


class CanvasExportPlugin(_PlatformExport):
    """Canvas gradebook import CSV: ``Student, ID, SIS User ID, SIS Login ID, Section, <assignment>...``,
    then a ``Points Possible`` row, then one row per student."""

    default_to = "canvas_grades.csv"
    id_columns = CANVAS_IDS
    all_columns = CANVAS_COLUMNS

    def _extra_rows(self, columns, assignments) -> list[list[str]]:
        lead = ["Points Possible"] + [""] * (len(columns) - 1) if columns else []
        return [lead + [f"{a.max_score:g}" for a in assignments]]

    def _export(self, gradebook: Gradebook) -> None:
        rows = read_mapping(self.mapping)
        if rows and "Student" not in rows[0]:
            raise ValueError(f"expected a column Student (the name as Canvas shows it) in the mapping file "
                             f"{self.mapping!r}, got {list(rows[0])}")
        super()._export(gradebook)


class MoodleExportPlugin(_PlatformExport):
    """Moodle grade import CSV: the identity columns (``ID number``, ``Email address``, ``Username``),
    then one column of grades per assignment."""

    default_to = "moodle_grades.csv"
    id_columns = MOODLE_COLUMNS
    all_columns = MOODLE_COLUMNS
