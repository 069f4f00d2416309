"""The course's answer key and the sandbox: which modules hold it, which files the sandbox must not show.

Used on both sides: the grader hides :func:`answer_key_paths` from the sandbox (the zygote's new
root shows none of them), and every worker seals :data:`ANSWER_KEY` in ``sys.modules``
(:mod:`.sandboxed.forbid`).
"""
from __future__ import annotations

import functools
import os

__all__ = ["ANSWER_KEY", "SANDBOX_VISIBLE", "answer_key_paths"]

# Modules of course_lib that hold or reach the answer key; never preloaded, hidden, sealed in the worker.
ANSWER_KEY = ("course_lib.reference", "course_lib.checkers", "course_lib.convert")
# What of course_lib the student's notebook may use in the sandbox (its own package, and the zygote's code).
SANDBOX_VISIBLE = ("course_lib.data", "course_lib.grading")


def answer_key_paths(visible: tuple[str, ...] | list[str] = SANDBOX_VISIBLE) -> list[str]:
    """Files and folders of course_lib the sandbox must not show: everything but its ``__init__.py``, the
    ``visible`` modules (``course_lib.data``, ``course_lib.grading``, which the zygote runs, and what the
    instructor's cells import) and the course_lib modules those import in turn, the answer key
    (:data:`ANSWER_KEY`) excepted; ``__pycache__`` is hidden too (compiled copies of the hidden modules).

    Worked out once per process and set of ``visible`` modules (it parses every file of course_lib:
    ~0.5 s, which each graded notebook paid before)."""
    return list(_answer_key_paths(tuple(visible)))


@functools.lru_cache(maxsize=None)
def _answer_key_paths(visible: tuple[str, ...]) -> tuple[str, ...]:
    import ast

    import course_lib
    root = os.path.dirname(os.path.abspath(course_lib.__file__))
    keep, todo = {"__init__"}, [m for m in visible if m.startswith("course_lib.")]
    while todo:
        top = todo.pop().split(".")[1]
        if top in keep or f"course_lib.{top}" in ANSWER_KEY:
            continue
        keep.add(top)
        folder = os.path.join(root, top)
        files = [os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs if f.endswith(".py")] \
            if os.path.isdir(folder) else [folder + ".py"]
        for path in files:
            try:
                with open(path, encoding="utf-8") as f:
                    tree = ast.parse(f.read())
            except (OSError, SyntaxError, ValueError):
                continue
            package = ["course_lib", *os.path.relpath(os.path.dirname(path), root).split(os.sep)]
            package = [p for p in package if p != "."]
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    todo += [a.name for a in node.names if a.name.startswith("course_lib.")]
                elif isinstance(node, ast.ImportFrom):
                    base = package[:len(package) - node.level + 1] if node.level else []
                    full = base + (node.module.split(".") if node.module else [])
                    if full[:1] != ["course_lib"]:
                        continue
                    todo += [f"course_lib.{a.name}" for a in node.names] if len(full) == 1 \
                        else [".".join(full[:2])]
    out = []
    for entry in sorted(os.listdir(root)):
        stem = entry[:-3] if entry.endswith(".py") else entry
        if stem not in keep:
            out.append(os.path.join(root, entry))
    return tuple(out)
