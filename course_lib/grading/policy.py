"""The static policy scan: the student's code read for shortcuts an exercise forbids.

:func:`policy_findings` scans the student's code for forbidden names (``nn.LSTMCell`` inside the
LSTM exercise, ``course_lib.reference``, ``eval``...), through imports, aliases and strings built
from literals, and attributes each :class:`Finding` to the graded parts whose functions reach the
offending code; :mod:`.verdict` gives such a part 0 without running it. :mod:`.sandboxed.forbid`
switches the same operations off at run time.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

__all__ = ["Finding", "policy_findings", "defined_names", "strip_magics"]


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


def _matches(node: ast.AST, pattern: str, names: _Names, used_names: list[str]) -> bool:
    """Does ``node`` use ``pattern``? (``used_names``: ``_names_used(node, names)``, worked out once
    for all the patterns.)

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
    for name in used_names:
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
        used_names = _names_used(node, names)
        for p in patterns:
            if _matches(node, p, names, used_names):
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
