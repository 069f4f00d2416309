"""What happened to each graded part, recorded when it is graded, for the instructor's class report.

The gradebook keeps a score per test cell; it cannot say *why* a part scored 0. While it grades,
:class:`~course_lib.grading.execute.TrustedExecute` records one :class:`PartOutcome` per
graded part and writes them, as JSON, beside the graded notebook::

    autograded/<student>/<assignment>/<notebook>.outcomes.json

(for sequential ``nbgrader autograde`` and for the parallel grader alike, which ships the graded
folder back whole; the gradebook may be SQLite or PostgreSQL). ``nbgrader_config.py`` lists the
file name in ``CourseDirectory.ignore``, so a student cannot hand one in and ``generate_feedback``
does not copy it. :mod:`course_lib.instructor.report` reads them.

A named mistake is recorded by its identifier in the checkers' catalogue (the ``label`` of a
:class:`course_lib.checkers._engine.Mistake`, which the checker attaches to its ``CheckFailed``),
never parsed back out of the message.
"""
from __future__ import annotations

import enum
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Outcome", "PartOutcome", "SUFFIX", "outcomes_path", "write_outcomes", "read_outcomes"]

SUFFIX = ".outcomes.json"
FORMAT = 1


class Outcome(str, enum.Enum):
    """How one graded part ended."""

    PASSED = "passed"
    MISTAKE = "mistake"              # wrong, and the checker named the mistake from its catalogue
    CHECK_FAILED = "check_failed"    # wrong (or unreadable) without a named mistake
    NOT_DEFINED = "not_defined"      # the notebook does not define the function the part grades
    POLICY = "policy"                # a forbidden shortcut: the part scores 0 without running
    TIMEOUT = "timeout"              # the student's code did not finish in the sandbox's time limit
    CRASH = "crash"                  # the student's code ended the sandbox process (or sent back garbage)


@dataclass
class PartOutcome:
    """One graded part (a test cell, by its ``grade_id``) of one student's notebook."""

    part: str
    outcome: Outcome
    mistakes: list[str] = field(default_factory=list)    # catalogue labels, for Outcome.MISTAKE
    shortcuts: list[str] = field(default_factory=list)   # forbidden patterns found, for Outcome.POLICY
    unattempted: bool = False       # every answer cell the part grades is as released (nbgrader's checksum)
    cells_stopped: int = 0          # code cells above the part that the sandbox stopped and skipped
    message: str = ""               # the first 300 characters of what the student was told

    def to_json(self) -> dict:
        out = asdict(self)
        out["outcome"] = self.outcome.value
        return out

    @classmethod
    def from_json(cls, data: dict) -> "PartOutcome":
        return cls(part=str(data["part"]), outcome=Outcome(data["outcome"]),
                   mistakes=[str(m) for m in data.get("mistakes", [])],
                   shortcuts=[str(s) for s in data.get("shortcuts", [])],
                   unattempted=bool(data.get("unattempted", False)), cells_stopped=int(data.get("cells_stopped", 0)),
                   message=str(data.get("message", "")))


def outcomes_path(folder: str | os.PathLike, notebook: str) -> Path:
    """``<folder>/<notebook>.outcomes.json``."""
    return Path(folder) / f"{notebook}{SUFFIX}"


def write_outcomes(folder: str | os.PathLike, notebook: str, parts: list[PartOutcome]) -> Path:
    """Write the outcomes of one graded notebook (whole file at once: a reader never sees half of it)."""
    path = outcomes_path(folder, notebook)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"format": FORMAT, "notebook": notebook, "parts": [p.to_json() for p in parts]},
                              indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_outcomes(folder: str | os.PathLike) -> dict[str, dict[str, PartOutcome]]:
    """``{notebook: {part: PartOutcome}}`` from the ``*.outcomes.json`` files in one graded folder."""
    out: dict[str, dict[str, PartOutcome]] = {}
    for path in sorted(Path(folder).glob(f"*{SUFFIX}")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            parts = {p["part"]: PartOutcome.from_json(p) for p in data["parts"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"expected a grading outcomes file written by nbgrader autograde, got an unreadable "
                             f"{path} ({exc}); grade that submission again") from None
        out[path.name[: -len(SUFFIX)]] = parts
    return out
