"""The instructor's test cells, read strictly: which checker calls a graded part makes.

A test cell (the instructor's, as nbgrader restored it from the gradebook) may only hold calls

    checkers.check_<name>(<student name>, ..., keyword=<literal>, ...)      # optionally `x = ...`

which :func:`parse_test_cell` turns into :class:`CheckCall` objects; :mod:`.verdict` runs them.
Anything else is a :class:`GradingConfigError` whose message tells the instructor how to rewrite it.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

__all__ = ["GradingConfigError", "Student", "CheckCall", "parse_test_cell"]


class GradingConfigError(ValueError):
    """A test cell the trusted grader cannot run: the instructor must rewrite it (the message says how)."""


@dataclass(frozen=True)
class Student:
    """An argument of a check that names something the student's notebook defines."""

    name: str


@dataclass(frozen=True)
class CheckCall:
    """``checkers.<checker>(*args, **kwargs)`` from a test cell; ``Student`` values are resolved in the worker."""

    checker: str
    args: tuple
    kwargs: dict
    line: int

    def student_names(self) -> list[str]:
        return [a.name for a in (*self.args, *self.kwargs.values()) if isinstance(a, Student)]


_RULE = ("a trusted test cell may only contain calls `checkers.check_<name>(student_function, keyword=literal, ...)` "
         "(optionally assigned to a name), whose arguments are names the notebook defines or Python literals")


def parse_test_cell(source: str, grade_id: str = "?") -> list[CheckCall]:
    """The checker calls of one test cell; raises :class:`GradingConfigError` for anything else."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise GradingConfigError(f"test cell {grade_id!r} is not valid Python ({exc}); {_RULE}.") from None
    calls = []
    for stmt in tree.body:
        value = stmt.value if isinstance(stmt, (ast.Expr, ast.Assign)) else None
        if isinstance(stmt, ast.Assign) and not all(isinstance(t, ast.Name) for t in stmt.targets):
            value = None
        if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                and isinstance(value.func.value, ast.Name) and value.func.value.id == "checkers"
                and value.func.attr.startswith("check_")):
            raise GradingConfigError(f"test cell {grade_id!r}, line {stmt.lineno}: "
                                     f"`{ast.unparse(stmt)[:80]}` is not a checker call; {_RULE}.")
        args = tuple(_argument(a, grade_id, stmt.lineno) for a in value.args)
        kwargs = {}
        for kw in value.keywords:
            if kw.arg is None:
                raise GradingConfigError(f"test cell {grade_id!r}, line {stmt.lineno}: `**` arguments; {_RULE}.")
            kwargs[kw.arg] = _argument(kw.value, grade_id, stmt.lineno)
        calls.append(CheckCall(value.func.attr, args, kwargs, stmt.lineno))
    if not calls:
        raise GradingConfigError(f"test cell {grade_id!r} calls no checker; {_RULE}.")
    return calls


def _argument(node: ast.expr, grade_id: str, line: int) -> Any:
    if isinstance(node, ast.Name):
        return Student(node.id)
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise GradingConfigError(f"test cell {grade_id!r}, line {line}: the argument `{ast.unparse(node)[:60]}` is "
                                 f"neither a name nor a literal; {_RULE}. Data the check needs must be made by the "
                                 f"checker itself, from a seed.") from None
