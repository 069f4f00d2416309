"""The trusted side of grading one notebook: read the test cells, call the real checkers, scan for shortcuts.

A test cell (the instructor's, as nbgrader restored it from the gradebook) may only hold calls

    checkers.check_<name>(<student name>, ..., keyword=<literal>, ...)      # optionally `x = ...`

which :func:`parse_test_cell` turns into :class:`CheckCall` objects. :func:`grade_part` runs them in
this process with the REAL checker, giving it a :class:`.remote.RemoteFunction` for each student name,
once as written and once more with a fresh secret seed; the student's cells run only in the worker.

:func:`policy_findings` is a static scan of the student's code for shortcuts an exercise forbids
(``nn.LSTMCell`` inside the LSTM exercise, ``course_lib.reference``, ``eval``...), attributed to the
parts whose functions reach the offending code.
"""
from __future__ import annotations

import ast
import contextlib
import inspect
import io
import logging
import re
import secrets
import traceback
from dataclasses import dataclass, field
from typing import Any

from .outcomes import Outcome
from .remote import CellPlan, NotDefined, SandboxFailure, SandboxTimeout, Worker
from .sandbox import Limits, Zygote

__all__ = ["GradingConfigError", "Student", "CheckCall", "PartResult", "parse_test_cell", "grade_part",
           "Finding", "policy_findings", "defined_names", "strip_magics"]

log = logging.getLogger(__name__)


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


# ----------------------------------------------------------------------------- running one part

@dataclass
class PartResult:
    """The outcome of one graded part: passed or not, what to show the student, what to log."""

    passed: bool
    stdout: str = ""
    ename: str = ""
    message: str = ""
    log: list[str] = field(default_factory=list)
    outcome: Outcome = Outcome.PASSED                      # for the class report (:mod:`.outcomes`)
    mistakes: tuple[str, ...] = ()                         # catalogue labels the checker named


def _has_seed(checker: Any) -> bool:
    try:
        return "seed" in inspect.signature(checker).parameters
    except (TypeError, ValueError):
        return False


def grade_part(zygote: Zygote, limits: Limits, cells: list[tuple[int, str]], plan: CellPlan,
               calls: list[CheckCall], checkers: Any, *, secret_seed: int | None = None) -> PartResult:
    """Run one test cell's checks against a fresh worker; never raises for anything the student did.

    ``secret_seed`` (default: a fresh ``secrets.randbelow(2**31)``) is used for one more run of the
    first call whose checker takes ``seed``; it is logged, never shown.
    """
    for call in calls:
        if not callable(getattr(checkers, call.checker, None)):
            raise GradingConfigError(f"course_lib.checkers has no {call.checker}")
    secret = secrets.randbelow(2**31) if secret_seed is None else secret_seed
    runs = [(c, dict(c.kwargs)) for c in calls]
    seeded = next((c for c in calls if _has_seed(getattr(checkers, c.checker))), None)
    if seeded is not None:
        runs.append((seeded, {**seeded.kwargs, "seed": secret}))
    result = PartResult(True, log=[f"secret seed {secret}" if seeded is not None else "no seeded checker"])
    out = io.StringIO()
    worker = Worker(zygote, limits, cells, plan)
    try:
        worker.start()
    except SandboxFailure as exc:
        worker.close()
        return _failed(result, out, "GradingStopped", f"your notebook could not be run in the sandbox: {exc}.",
                       _stopped(exc))
    with worker:
        for k, (call, kwargs) in enumerate(runs):
            secret_run = seeded is not None and k == len(runs) - 1
            try:
                resolved = {n: worker.function(n) for n in call.student_names()}
                args = [resolved[a.name] if isinstance(a, Student) else a for a in call.args]
                kw = {key: resolved[v.name] if isinstance(v, Student) else v for key, v in kwargs.items()}
                with contextlib.redirect_stdout(io.StringIO() if secret_run else out):
                    getattr(checkers, call.checker)(*args, **kw)
            except NotDefined as exc:
                return _failed(result, out, "NameError", str(exc), Outcome.NOT_DEFINED)
            except AssertionError as exc:            # CheckFailed, the checkers' one way to say "wrong"
                message = _scrub(str(exc), secret) if secret_run else str(exc)
                if secret_run:
                    message += " (This was an extra check with a fresh random seed, as in every graded run.)"
                mistakes = tuple(str(m) for m in getattr(exc, "mistakes", ()))
                return _failed(result, out, "CheckFailed", message,
                               Outcome.MISTAKE if mistakes else Outcome.CHECK_FAILED, mistakes)
            except SandboxFailure as exc:
                names = ", ".join(call.student_names()) or "your code"
                return _failed(result, out, "GradingStopped", f"{names}: {exc}. {_stopped_hint(str(exc), limits)}",
                               _stopped(exc))
            except Exception as exc:  # noqa: BLE001 - a checker that choked on what came back
                result.log.append(f"checker {call.checker} raised {type(exc).__name__}: {exc}\n"
                                  f"{traceback.format_exc(limit=-6)}")
                names = ", ".join(call.student_names()) or "your code"
                return _failed(result, out, "CheckFailed",
                               f"{names}: the checker could not read what your code returned "
                               f"({type(exc).__name__}: {str(exc)[:200]}).", Outcome.CHECK_FAILED)
            if secret_run:
                print(f"{', '.join(call.student_names())}: also correct on a fresh random seed.", file=out)
    result.stdout = out.getvalue()
    return result


def _failed(result: PartResult, out: io.StringIO, ename: str, message: str,
            outcome: Outcome = Outcome.CHECK_FAILED, mistakes: tuple[str, ...] = ()) -> PartResult:
    result.passed, result.stdout, result.ename, result.message = False, out.getvalue(), ename, message
    result.outcome, result.mistakes = outcome, mistakes
    result.log.append(f"{ename}: {message}")
    return result


def _stopped(exc: SandboxFailure) -> Outcome:
    return Outcome.TIMEOUT if isinstance(exc, SandboxTimeout) else Outcome.CRASH


def _scrub(message: str, secret: int) -> str:
    return re.sub(rf"\bseed={secret}\b", "seed=(a secret one)", message)


def _stopped_hint(reason: str, limits: Limits) -> str:
    if "did not finish within" in reason:
        return ("Look for a loop that never ends, or work that is far too slow. "
                "This part scores 0.")
    if "ended the grading process" in reason:
        return ("A crash, sys.exit()/os._exit() or a signal, or a limit of the sandbox "
                f"({limits.memory_bytes // 2**30} GiB of memory, {limits.cpu_seconds} s of CPU, "
                f"{limits.file_bytes // 2**20} MiB per file). This part scores 0.")
    return "This part scores 0."


# ----------------------------------------------------------------------------- policy: forbidden shortcuts

@dataclass(frozen=True)
class Finding:
    """One use of a forbidden name in the student's code."""

    pattern: str
    cell: int          # index of the notebook cell
    line: int
    text: str          # the offending line

    def describe(self) -> str:
        return f"`{self.pattern}` (cell {self.cell}, line {self.line}: `{self.text}`)"


def _aliases(trees: list[ast.AST]) -> dict[str, str]:
    """Names bound by imports, to the dotted path they stand for: ``F`` -> ``torch.nn.functional``."""
    out: dict[str, str] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """``torch.nn.LSTMCell`` for ``nn.LSTMCell`` after ``from torch import nn`` (None if not a plain chain)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(aliases.get(node.id, node.id))
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" \
            and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
        parts.append(f"{_dotted(node.args[0], aliases) or '?'}.{node.args[1].value}")   # getattr(nn, "LSTMCell")
    else:
        parts.append("?")
    return ".".join(reversed(parts))


def _in_order(pattern: list[str], name: list[str]) -> bool:
    """Do the parts of ``pattern`` occur in ``name`` in order, the last one included?"""
    it = iter(name)
    return all(any(p == n for n in it) for p in pattern)


def _names_used(node: ast.AST, aliases: dict[str, str]) -> list[str]:
    """The dotted names one AST node refers to (resolved through imports)."""
    if isinstance(node, (ast.Attribute, ast.Name)):
        return [_dotted(node, aliases)]
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        return [f"{node.module or ''}.{a.name}" for a in node.names]
    if isinstance(node, ast.Call):
        func = _dotted(node.func, aliases) if isinstance(node.func, (ast.Name, ast.Attribute)) else None
        if func == "getattr":
            return [_dotted(node, aliases)]
        if func in ("__import__", "builtins.__import__", "importlib.import_module") and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            return [node.args[0].value]                 # importlib.import_module("course_lib.reference")
    return []


def _matches(node: ast.AST, pattern: str, aliases: dict[str, str]) -> bool:
    """Does ``node`` use ``pattern``?

    ``"eval"`` is the name anywhere; ``".backward"`` any attribute of that name (a method); a dotted
    ``"nn.LSTMCell"`` matches a use whose full name, resolved through the imports, holds these parts
    in order (``torch.nn.LSTMCell``, ``tnn.LSTMCell`` after ``import torch.nn as tnn``).
    """
    if pattern.startswith("."):
        return isinstance(node, ast.Attribute) and node.attr == pattern[1:]
    parts = pattern.split(".")
    for name in _names_used(node, aliases):
        if not name:
            continue
        names = name.split(".")
        if len(parts) == 1:                 # a builtin or a module: `eval`, `builtins.eval`, `importlib.x`
            if names[0] == pattern or (names[-1] == pattern and names[0] in ("builtins", "__builtins__", "?")):
                return True
        elif _in_order(parts, names):
            return True
    return False


def _uses(tree: ast.AST, patterns: list[str], cell: int, lines: list[str], aliases: dict[str, str]) -> list[Finding]:
    found = []
    for node in ast.walk(tree):
        for p in patterns:
            if _matches(node, p, aliases):
                line = getattr(node, "lineno", 0)
                text = lines[line - 1].strip()[:120] if 0 < line <= len(lines) else ""
                found.append(Finding(p, cell, line, text))
    return found


def defined_names(stmt: ast.stmt) -> set[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names}
    names = set()
    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        for t in targets:
            names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def policy_findings(cells: list[tuple[int, str]], graded: dict[str, list[str]], forbidden: list[str],
                    context: list[str] = (), everywhere: list[str] = ()) -> dict[str, list[Finding]]:
    """Forbidden uses that each graded part reaches, as ``{grade_id: [Finding, ...]}``.

    ``cells`` are the student's code cells (index, source); ``context`` the notebook's other code (its
    imports say what ``nn`` or ``F`` stand for); ``graded`` maps each part to the names its checks grade.
    A part is charged with a finding when one of its names, or a top-level name they use (transitively),
    is defined by a statement that uses a forbidden name. A top-level statement that defines nothing is
    charged to every part only for the ``everywhere`` patterns (``eval(...)`` or ``importlib`` at the top
    of a cell can define anything; a try-out ``print(nn.LSTMCell(3, 4)(x))`` cannot).
    """
    if not forbidden:
        return {}
    definitions: dict[str, list[ast.stmt]] = {}
    findings_of: dict[int, list[Finding]] = {}
    everywhere_found: list[Finding] = []
    trees = {}
    for index, source in cells:
        try:
            trees[index] = ast.parse(strip_magics(source))
        except SyntaxError:
            continue
    aliases = _aliases([*_parse_all(context), *trees.values()])
    for index, source in cells:
        if index not in trees:
            continue
        tree, lines = trees[index], source.splitlines()
        for stmt in tree.body:
            found = _uses(stmt, forbidden, index, lines, aliases)
            names = defined_names(stmt)
            for n in names:
                definitions.setdefault(n, []).append(stmt)
            if found:
                findings_of[id(stmt)] = found
                if not names:
                    everywhere_found += [f for f in found if f.pattern in everywhere]
    out = {}
    for grade_id, roots in graded.items():
        seen, todo, found = set(), list(roots), list(everywhere_found)
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for stmt in definitions.get(name, []):
                found += findings_of.get(id(stmt), [])
                todo += [n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and n.id in definitions]
        if found:
            out[grade_id] = sorted(set(found), key=lambda f: (f.cell, f.line, f.pattern))
    return out


def strip_magics(source: str) -> str:
    """IPython magics and shell escapes as comments, so the cell parses as Python."""
    return "\n".join("#" + line if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _parse_all(sources: list[str]) -> list[ast.AST]:
    out = []
    for source in sources:
        try:
            out.append(ast.parse(strip_magics(source)))
        except SyntaxError:
            pass
    return out
