"""One assignment's class, read back after autograding: scores, part outcomes, answers, answer key.

Scores come from the nbgrader gradebook (any SQLAlchemy URL: the course's SQLite file or
PostgreSQL), how each part ended from the ``*.outcomes.json`` files grading wrote beside each graded
notebook (:mod:`course_lib.grading.outcomes`), and the students' answer cells from the graded
notebooks. The starter code is the released notebook's answer cells; the answer key is the
instructor's solution notebook and the functions of :mod:`course_lib.reference`.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..grading.outcomes import PartOutcome, read_outcomes

__all__ = ["Part", "StudentRecord", "ClassData", "load_class", "course_config"]

_MARKERS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


@dataclass(frozen=True)
class Part:
    """One graded cell of the assignment."""

    name: str              # grade_id
    notebook: str
    max_score: float
    autograded: bool       # a test cell the checkers grade (else graded by hand)


@dataclass
class StudentRecord:
    """One student who handed the assignment in."""

    id: str
    total: float
    scores: dict[str, float]                             # part -> points
    outcomes: dict[str, PartOutcome]                     # part -> how it ended (autograded parts)
    answers: dict[str, str] = field(default_factory=dict)   # answer cell grade_id -> source
    graded: dict[str, Path] = field(default_factory=dict)   # notebook -> graded (or feedback) file


@dataclass
class ClassData:
    """Everything the class report needs about one assignment."""

    assignment: str
    root: Path
    max_score: float
    parts: list[Part]
    students: list[StudentRecord]
    not_submitted: list[str]
    starter: dict[str, str]                 # answer cell grade_id -> released source
    key: dict[str, dict[str, str]]          # answer-key document name -> {part: source}
    missing_outcomes: list[str] = field(default_factory=list)   # students graded before outcomes were recorded


def course_config(root: Path):
    """The course's nbgrader configuration, read from ``root/nbgrader_config.py``."""
    from traitlets.config.loader import PyFileConfigLoader

    if not (root / "nbgrader_config.py").is_file():
        raise ValueError(f"expected an nbgrader course directory with nbgrader_config.py, got {str(root)!r}")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    config.CourseDirectory.root = str(root)
    return config


def _answer_cells(path: Path, strip_markers: bool = False) -> dict[str, str]:
    nb = nbformat.read(path, as_version=4)
    out = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution") and isinstance(meta.get("grade_id"), str):
            source = cell.source
            if strip_markers:
                source = "\n".join(line for line in source.splitlines() if not _MARKERS.match(line))
            out[meta["grade_id"]] = source
    return out


def reference_functions() -> dict[str, dict[str, str]]:
    """Every top-level function and class of :mod:`course_lib.reference`, one answer-key document each."""
    import course_lib.reference as ref

    out = {}
    for info in pkgutil.iter_modules(ref.__path__):
        module = importlib.import_module(f"{ref.__name__}.{info.name}")
        source = inspect.getsource(module)
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                out[f"course_lib.reference.{info.name}.{node.name}"] = {node.name: ast.get_source_segment(source, node)}
    return out


def load_class(assignment: str, root: str | Path = ".", db_url: str | None = None) -> ClassData:
    """Read one assignment's class from the gradebook and the ``autograded/`` folder of the course at ``root``."""
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.coursedir import CourseDirectory

    if not isinstance(assignment, str) or not assignment or "/" in assignment:
        raise ValueError(f"expected an assignment name such as '02_lstm', got {assignment!r}")
    root = Path(root).resolve()
    config = course_config(root)
    if db_url:
        config.CourseDirectory.db_url = db_url
    coursedir = CourseDirectory(config=config)
    if coursedir.db_url.startswith("sqlite:///") and not Path(coursedir.db_url[len("sqlite:///"):]).is_file():
        raise ValueError(f"expected a gradebook at {coursedir.db_url}; run `nbgrader autograde {assignment}` "
                         f"first (or pass --db-url)")          # nbgrader would make an empty one
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        try:
            a = gb.find_assignment(assignment)
        except MissingEntry:
            raise ValueError(f"expected assignment {assignment!r} in the gradebook {coursedir.db_url}; run "
                             f"`nbgrader generate_assignment {assignment}` and `nbgrader autograde {assignment}` "
                             f"first") from None
        parts = []
        for nb in sorted(a.notebooks, key=lambda n: n.name):
            solution = {c.name for c in nb.solution_cells}
            for cell in nb.grade_cells:
                parts.append(Part(cell.name, nb.name, float(cell.max_score),
                                  cell.cell_type == "code" and cell.name not in solution))
        records, submitted = [], set()
        for sub in a.submissions:
            scores = {g.name: float(g.score) for nb in sub.notebooks for g in nb.grades}
            records.append(StudentRecord(sub.student.id, float(sub.score), scores, {}))
            submitted.add(sub.student.id)
        max_score = float(a.max_score)
        not_submitted = sorted(s.id for s in gb.students if s.id not in submitted)
    parts = _notebook_order(parts, root / coursedir.source_directory / assignment)

    autograded = root / coursedir.autograded_directory
    feedback = root / coursedir.feedback_directory
    missing = []
    for record in records:
        folder = autograded / record.id / assignment
        outcomes = read_outcomes(folder) if folder.is_dir() else {}
        record.outcomes = {name: o for per_nb in outcomes.values() for name, o in per_nb.items()}
        if folder.is_dir() and not outcomes:
            missing.append(record.id)
        for path in sorted(folder.glob("*.ipynb")):
            record.answers.update(_answer_cells(path))
            html = feedback / record.id / assignment / f"{path.stem}.html"
            record.graded[path.stem] = html if html.is_file() else path
    records.sort(key=lambda r: r.id)

    starter = {}
    for path in sorted((root / coursedir.release_directory / assignment).glob("*.ipynb")):
        starter.update(_answer_cells(path))
    key = {}
    for path in sorted((root / coursedir.source_directory / assignment).glob("*.ipynb")):
        key[f"solution notebook {path.relative_to(root)}"] = _answer_cells(path, strip_markers=True)
    key.update(reference_functions())
    return ClassData(assignment, root, max_score, parts, records, not_submitted, starter, key, missing)


def _notebook_order(parts: list[Part], source: Path) -> list[Part]:
    """Parts in the order of the instructor's notebook (the gradebook does not keep it)."""
    position = {}
    for path in sorted(source.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid:
                position[(path.stem, gid)] = i
    return sorted(parts, key=lambda p: (p.notebook, position.get((p.notebook, p.name), 10**6), p.name))
