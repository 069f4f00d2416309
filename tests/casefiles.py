"""Fixture files: one student's answer cells as a Python file, after a header that says what to expect.

The one parser for ``tests/adversarial/*.py`` (attacks on the grader), ``tests/fixtures/submissions/
<assignment>/*.py`` (practice students with one realistic mistake, also read by
``tools/make_submissions.py``) and ``tests/fixtures/class_report/<assignment>/*.py`` (a class for the
instructor's report). The file's stem is the student id. The format::

    # The layer restarts every step from h0, so the hidden state is never carried forward.
    # assignment: 01_rnn
    # expect: rnn_layer_check=0, rnn_cell_check=0.5
    # feedback: the hidden state h is not carried from one step to the next
    # needs: isolation
    # json: <kind> <argument>

    # %% rnn_layer
    def rnn_layer(xs, h0, w_ih, w_hh, b_ih, b_hh):
        ...

    # %% after rnn_layer
    print("a cell of its own, inserted after the answer cell rnn_layer")

The **header** is every line before the first cell; its lines are comments. A line ``# key: value`` with
one of the keys below sets that field; every other non-empty line belongs to the description.

- ``assignment``  the assignment the cells belong to (default: the name of the file's folder)
- ``expect``      ``grade_id=score`` for every graded cell that scores below full marks
- ``feedback``    what the feedback on the first ``expect`` cell must contain (``message`` is the same key)
- ``needs``       ``isolation``: the case reads or writes what only the sandbox's isolation protects
- ``json``        an edit of the notebook's JSON, ``<kind> <argument>``; the key may repeat

A **cell** starts at a line ``# %% <grade_id>`` and runs to the next such line; its source is the lines
in between, without leading and trailing blank lines. It replaces the answer cell ``grade_id``;
``# %% after <grade_id>`` instead holds a new cell inserted after that one. A file needs one cell or one
``json`` edit at least.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Case", "read_case", "read_cases"]

CELL_LINE = re.compile(r"^# %% (\S.*?)\s*$")
KEYS = ("assignment", "expect", "feedback", "message", "needs", "json")


@dataclass
class Case:
    """One student's submission as a fixture file gives it (see the module docstring for the format)."""

    student: str
    assignment: str
    description: str
    expect: dict[str, float]                                  # grade_id -> score, cells below full marks
    feedback: str                                             # what the feedback must contain ("" for no check)
    json_edits: list[tuple[str, str]]                         # (kind, argument)
    needs_isolation: bool                                     # reads or writes what only isolation protects
    replace: dict[str, str] = field(default_factory=dict)     # answer cell grade_id -> source
    after: dict[str, str] = field(default_factory=dict)       # grade_id -> new cell inserted after it


def read_case(path: Path) -> Case:
    """Parse one fixture file; ``ValueError`` naming the file if it has neither cell nor json edit, or a bad ``expect``."""
    path = Path(path)
    header, cells, current = [], {}, None
    for line in path.read_text().splitlines():
        m = CELL_LINE.match(line)
        if m:
            current = m.group(1)
            cells[current] = []
        elif current is None:
            header.append(line.lstrip("#").strip())
        else:
            cells[current].append(line)
    fields = {"assignment": path.parent.name, "expect": "", "feedback": "", "needs": ""}
    description, edits = [], []
    for text in header:
        key, colon, value = text.partition(":")
        if not colon or key not in KEYS:
            if text:
                description.append(text)
        elif key == "json":
            kind, _, arg = value.strip().partition(" ")
            edits.append((kind, arg))
        else:
            fields["feedback" if key == "message" else key] = value.strip()
    if not cells and not edits:
        raise ValueError(f"{path}: no '# %% <grade_id>' cell found (and no json edit)")
    expect = {}
    for item in filter(None, (s.strip() for s in fields["expect"].split(","))):
        grade_id, equals, score = item.partition("=")
        try:
            expect[grade_id.strip()] = float(score)
        except ValueError:
            raise ValueError(f"{path}: expect lists grade_id=score pairs, got {item!r}") from None
    case = Case(path.stem, fields["assignment"], " ".join(description), expect, fields["feedback"], edits,
                fields["needs"] == "isolation")
    for key, lines in cells.items():
        source = "\n".join(lines).strip("\n")
        if key.startswith("after "):
            case.after[key[len("after "):].strip()] = source
        else:
            case.replace[key] = source
    return case


def read_cases(folder: Path) -> list[Case]:
    """Every fixture file (``*.py``) in ``folder``, sorted by name."""
    return [read_case(p) for p in sorted(Path(folder).glob("*.py"))]
