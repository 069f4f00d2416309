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

from . import forbid as forbid_mod
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
    outside: bool = False          # stopped from outside the student's code (the host, the grader)
    outcome: Outcome = Outcome.PASSED                      # for the class report (:mod:`.outcomes`)
    mistakes: tuple[str, ...] = ()                         # catalogue labels the checker named


def _has_seed(checker: Any) -> bool:
    try:
        return "seed" in inspect.signature(checker).parameters
    except (TypeError, ValueError):
        return False


def grade_part(zygote: Zygote, limits: Limits, cells: list[tuple[int, str]], plan: CellPlan,
               calls: list[CheckCall], checkers: Any, *, secret_seed: int | None = None,
               deadline: float | None = None, forbid: list[str] = ()) -> PartResult:
    """Run one test cell's checks against a fresh worker; never raises for anything the student did.

    ``secret_seed`` (default: a fresh ``secrets.randbelow(2**31)``) is used for one more run of the
    first call whose checker takes ``seed``; it is logged, never shown. ``deadline`` (a
    ``time.monotonic()`` value) is when the submission's time budget ends. ``forbid`` is switched off in
    the worker (:mod:`.forbid`); a graded call that reaches it fails the part as a ``PolicyViolation``.
    A part whose worker was stopped from outside the student's code (the host, the grader) is graded
    once more, and the log says so (``RETRIED``); if that happens again the part fails with a message
    that does not blame the student and a ``FLAG`` in the log for the instructor.
    """
    first = _grade_part(zygote, limits, cells, plan, calls, checkers, secret_seed, deadline, forbid)
    if not first.outside:
        return first
    log.warning("a part's sandbox was stopped from outside the student's code; grading it once more")
    again = _grade_part(zygote, limits, cells, plan, calls, checkers, secret_seed, deadline, forbid)
    again.log.insert(0, "RETRIED: the first attempt was stopped from outside the student's code")
    if again.outside:
        again.log.append("FLAG for the instructor: stopped from outside the student's code twice; grade this part "
                         "again (nbgrader autograde --force) or by hand")
        again.message += " Your instructor has been told and will grade this part again."
    return again


def _grade_part(zygote: Zygote, limits: Limits, cells: list[tuple[int, str]], plan: CellPlan,
                calls: list[CheckCall], checkers: Any, secret_seed: int | None, deadline: float | None,
                forbid: list[str]) -> PartResult:
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
    worker = Worker(zygote, limits, cells, plan, deadline, forbid)
    try:
        worker.start()
    except SandboxFailure as exc:
        worker.close()
        result.outside = exc.outside
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
                result.outside = exc.outside
                names = ", ".join(call.student_names()) or "your code"
                if forbid_mod.MARK in str(exc):        # the worker's last word: a forbidden call, see .forbid
                    what = str(exc).split(forbid_mod.MARK, 1)[1].strip()
                    return _failed(result, out, "PolicyViolation",
                                   f"{names}: called {what}, which this assignment does not allow. "
                                   f"This part scores 0.", Outcome.POLICY)
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
    if "ran out" in reason and "time for grading this submission" in reason:
        return ("Some part of your notebook is far too slow (or never ends); the parts not graded in time "
                "score 0.")
    if "stopped from outside your code" in reason:
        return "This is not your code's fault."
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
        what = f"the internals of `{self.pattern[:-2]}`" if self.pattern.endswith(".*") else f"`{self.pattern}`"
        return f"{what} (cell {self.cell}, line {self.line}: `{self.text}`)"


_IMPORTERS = ("__import__", "builtins.__import__", "importlib.import_module", "importlib.__import__")


def _const_str(node: ast.AST, constants: dict[str, str]) -> str | None:
    """The string an expression always evaluates to, if it is built from literals: ``"auto" + "grad"``,
    ``f"lstm_{'cell'}"``, ``"".join(["lstm", "_cell"])``, or a top-level name bound once to one of those."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _const_str(node.left, constants), _const_str(node.right, constants)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.JoinedStr):
        parts = [_const_str(v.value if isinstance(v, ast.FormattedValue) else v, constants) for v in node.values]
        return None if None in parts else "".join(parts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join" \
            and len(node.args) == 1 and isinstance(node.args[0], (ast.List, ast.Tuple)):
        sep = _const_str(node.func.value, constants)
        parts = [_const_str(e, constants) for e in node.args[0].elts]
        return None if sep is None or None in parts else sep.join(parts)
    return None


@dataclass
class _Names:
    """What names stand for in the notebook: imports and assignments of them (``t = torch``), and
    top-level names bound to constant strings (``a = "auto"``)."""

    aliases: dict[str, str] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)


def _names_in(trees: list[ast.AST]) -> _Names:
    names = _Names()
    assigned: dict[str, list[ast.expr]] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    names.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    names.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name):
                        assigned.setdefault(t.id, []).append(node.value)
                    elif isinstance(t, (ast.Tuple, ast.List)) and isinstance(node.value, (ast.Tuple, ast.List)) \
                            and len(t.elts) == len(node.value.elts):          # a, b = torch, "grad"
                        for te, ve in zip(t.elts, node.value.elts):
                            if isinstance(te, ast.Name):
                                assigned.setdefault(te.id, []).append(ve)
    for name, values in assigned.items():
        if len(values) == 1 and _const_str(values[0], {}) is not None:
            names.constants[name] = _const_str(values[0], {})
    for _ in range(4):                           # aliases of aliases: t = torch; u = t.nn
        changed = False
        for name, values in assigned.items():
            if name in names.aliases:
                continue
            for value in values:
                dotted = _dotted(value, names)
                if dotted and not dotted.startswith("?") and dotted.split(".")[0] in _roots(names):
                    names.aliases[name] = dotted
                    changed = True
                    break
        if not changed:
            break
    return names


def _roots(names: _Names) -> set[str]:
    """Top-level modules the notebook imports (what an alias must lead back to)."""
    return {v.split(".")[0] for v in names.aliases.values()} | {"builtins", "sys"}


def _dotted(node: ast.AST, names: _Names) -> str | None:
    """``torch.nn.LSTMCell`` for ``nn.LSTMCell`` after ``from torch import nn`` (None if not a plain chain).

    Followed: attributes, aliases (imports and ``t = torch``), ``getattr(x, <constant string>)``,
    ``sys.modules[<constant>]``, ``vars(x)[<constant>]`` / ``x.__dict__[<constant>]`` and
    ``importlib.import_module(<constant>)``; a constant string may be built (``"auto" + "grad"``).
    """
    parts = []
    while isinstance(node, ast.Attribute):
        if node.attr != "__dict__":
            parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(names.aliases.get(node.id, node.id))
    elif isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)) and node.args:
        func = _dotted(node.func, names)
        key = _const_str(node.args[1], names.constants) if len(node.args) >= 2 else None
        if func in ("getattr", "builtins.getattr") and key is not None:
            parts.append(f"{_dotted(node.args[0], names) or '?'}.{key}")         # getattr(nn, "LSTMCell")
        elif func in _IMPORTERS and _const_str(node.args[0], names.constants) is not None:
            parts.append(_const_str(node.args[0], names.constants))             # import_module("x.y")
        elif func in ("vars", "builtins.vars") and len(node.args) == 1:
            parts.append(_dotted(node.args[0], names) or "?")
        else:
            parts.append("?")
    elif isinstance(node, ast.Subscript) and _const_str(node.slice, names.constants) is not None:
        key = _const_str(node.slice, names.constants)
        container = _dotted(node.value, names) or "?"
        if container in ("sys.modules", "?.modules"):
            parts.append(key)                                                    # sys.modules["x.y"]
        else:
            parts.append(f"{container}.{key}")                                   # torch.__dict__["lstm_cell"]
    else:
        parts.append("?")
    return ".".join(reversed(parts))


def _in_order(pattern: list[str], name: list[str]) -> bool:
    """Do the parts of ``pattern`` occur in ``name`` in order, the last one included?"""
    it = iter(name)
    return all(any(p == n for n in it) for p in pattern)


def _names_used(node: ast.AST, names: _Names) -> list[str]:
    """The dotted names one AST node refers to (resolved through imports and aliases)."""
    if isinstance(node, (ast.Attribute, ast.Name, ast.Subscript)):
        dotted = _dotted(node, names)
        return [dotted] if dotted else []
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        return [f"{node.module or ''}.{a.name}" for a in node.names]
    if isinstance(node, ast.Call):
        func = _dotted(node.func, names) if isinstance(node.func, (ast.Name, ast.Attribute)) else None
        if func in ("getattr", "builtins.getattr") or func in _IMPORTERS:
            return [_dotted(node, names)]
    return []


def _matches(node: ast.AST, pattern: str, names: _Names) -> bool:
    """Does ``node`` use ``pattern``?

    ``"eval"`` is the name anywhere; ``".backward"`` any attribute of that name (a method); a dotted
    ``"nn.LSTMCell"`` matches a use whose full name, resolved through the imports, holds these parts
    in order (``torch.nn.LSTMCell``, ``tnn.LSTMCell`` after ``import torch.nn as tnn``); ``"a.b.*"``
    matches anything inside ``a.b`` except its public ``check_*`` functions (``course_lib.checkers.*``:
    the checkers' internals, where the answer key lives).
    """
    if pattern.startswith("."):
        if isinstance(node, ast.Attribute) and node.attr == pattern[1:]:
            return True
        return isinstance(node, ast.Call) and (_dotted(node, names) or "").endswith(pattern)   # getattr(x, "backward")
    parts = pattern.split(".")
    for name in _names_used(node, names):
        if not name:
            continue
        used = name.split(".")
        if parts[-1] == "*":
            prefix = parts[:-1]
            if used[:len(prefix)] == prefix and len(used) > len(prefix) \
                    and not used[len(prefix)].startswith("check_") and used[len(prefix)] != "CheckFailed":
                return True
        elif len(parts) == 1:               # a builtin or a module: `eval`, `builtins.eval`, `importlib.x`
            if used[0] == pattern or (used[-1] == pattern and used[0] in ("builtins", "__builtins__", "?")):
                return True
        elif _in_order(parts, used):
            return True
    return False


def _uses(tree: ast.AST, patterns: list[str], cell: int, lines: list[str], names: _Names) -> list[Finding]:
    found = []
    for node in ast.walk(tree):
        for p in patterns:
            if _matches(node, p, names):
                line = getattr(node, "lineno", 0)
                text = lines[line - 1].strip()[:120] if 0 < line <= len(lines) else ""
                found.append(Finding(p, cell, line, text))
    return found


def _walk_scope(node: ast.AST):
    """``ast.walk`` that yields nested defs, lambdas and classes but does not enter them (their names are local)."""
    todo = [node]
    while todo:
        n = todo.pop()
        yield n
        if n is node or not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            todo += list(ast.iter_child_nodes(n))


def defined_names(stmt: ast.stmt) -> set[str]:
    """The global names a top-level statement binds: defs and classes (with the names their bodies declare
    ``global``), imports, and every name assigned at this level (``x = ...``, ``for x in ...``,
    ``with ... as x``, ``(x := ...)``, inside ``if``/``try``/loops too)."""
    names = set()
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names.add(stmt.name)
        return names | {n for node in ast.walk(stmt) if isinstance(node, ast.Global) for n in node.names}
    for node in _walk_scope(stmt):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
    for node in ast.walk(stmt):           # a def nested in an `if` may declare globals as well
        if isinstance(node, ast.Global):
            names |= set(node.names)
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
    names = _names_in([*_parse_all(context), *trees.values()])
    for index, source in cells:
        if index not in trees:
            continue
        tree, lines = trees[index], source.splitlines()
        for stmt in tree.body:
            found = _uses(stmt, forbidden, index, lines, names)
            defines = defined_names(stmt)
            for n in defines:
                definitions.setdefault(n, []).append(stmt)
            if found:
                findings_of[id(stmt)] = found
                if not defines:
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
