"""Runs in the sandbox: shortcuts switched off where the student's code runs, below any name it can reach.

The static scan of :mod:`..policy` reads the student's code and explains what it finds; this module
makes the same shortcuts unavailable in the worker, whatever name the code reaches them by (an alias,
a loop variable, ``getattr`` with a built string, ``pickle``, ``compile`` + ``types.FunctionType``...),
because it acts on the objects themselves. :func:`install` runs in the worker before any cell of
the notebook; it is given the assignment's ``TrustedExecute.forbidden_operations``:

- ``"aten::lstm_cell"`` (``fnmatch`` patterns allowed): every overload of the ATen operator gets a
  kernel that refuses, registered with ``torch.library`` at the dispatcher for each key the operator
  has a kernel for (``CompositeImplicitAutograd``, ``CPU``, ``Autograd``...), and its Python kernels
  and decompositions are replaced too, so ``torch.lstm_cell``, ``nn.LSTMCell``, ``torch._VF``,
  ``torch.ops.aten``, ``decompose()``, ``make_fx`` tracing, threads and ``inference_mode`` all meet it;
- ``"autograd"``: the backward engine (``Tensor.backward``, ``torch.autograd.grad``, ``torch.func``'s
  reverse mode, all of which end in ``Variable._execution_engine``) and forward-mode AD
  (``aten::_make_dual``, which ``torch.func.jvp``/``jacfwd`` use);
- ``"torch.nn.utils.clip_grad_norm_"`` (a dotted path to a Python function): the function object's
  code is replaced (and that of the functions it wraps), so every alias of it refuses.

The answer key is sealed in every worker: ``course_lib.checkers`` is a stand-in whose ``check_*``
functions do nothing (the test cells' checks run in the trusted grader, never here) and
``course_lib.reference`` a module whose every attribute is refused; their files are hidden from the
sandbox as well (:func:`..answer_key.answer_key_paths`).

While the notebook's cells run, a refused call raises :class:`ForbiddenOperation` (the cell stops
there, as an error would stop it). Once :func:`arm` is called (after the cells, before the graded
calls) a refused call ends the worker at once, with the reason sent to the trusted side as the
worker's last message; :mod:`..verdict` turns it into a forbidden shortcut (0 for the part, the reason
in the gradebook comment). A ``try``/``except`` around the call cannot keep it.

What this does not do: code in the same process can, in principle, undo anything done here (for
example by re-registering a kernel through ``torch.library``, or finding a type through
``object.__subclasses__``). The static scan refuses those routes by name (see the README's trust model).
"""
from __future__ import annotations

import fnmatch
import importlib
import linecache
import os
import sys
import types
import warnings
from typing import Any, NoReturn

from ..answer_key import ANSWER_KEY

__all__ = ["ForbiddenOperation", "install", "arm", "hit"]

_KEYS = ("CompositeImplicitAutograd", "CompositeExplicitAutograd", "CPU", "Autograd")
_STATE: dict[str, Any] = {"report": None, "libraries": [], "installed": [], "requested": set(), "sealed": False}


class ForbiddenOperation(RuntimeError):
    """The student's code called something the assignment forbids; it is switched off while grading."""


def _student_line() -> str:
    """`` (line 3: `return torch.lstm_cell(...)`)`` for the innermost frame of the student's cells, or ''."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(("<ipython-input-", "<cell")) or "/ipykernel_" in name:
            text = linecache.getline(name, frame.f_lineno).strip()[:120]
            return f" (line {frame.f_lineno}: `{text}`)" if text else f" (line {frame.f_lineno})"
        frame = frame.f_back
    return ""


def hit(name: str) -> NoReturn:
    """A refused call of ``name``: raise while the cells run; end the worker with the reason once armed."""
    text = f"{name}{_student_line()}"
    report = _STATE["report"]
    if report is not None:
        report(text)
    raise ForbiddenOperation(f"{text} is switched off while this assignment is graded: the exercise asks "
                             f"you to write it yourself")


def arm(fd: int) -> None:
    """From now on (the graded calls), a refused call sends what it was (``{"forbidden": what}``) on ``fd`` and
    ends this process."""
    from .. import protocol

    def report(text: str) -> NoReturn:
        try:
            protocol.send(fd, protocol.encode({protocol.FORBIDDEN: text[:2000]}))
        finally:
            os._exit(0)

    _STATE["report"] = report


# ----------------------------------------------------------------------------- what can be switched off

def _blocked_code(name: str, closure_size: int) -> types.CodeType:
    """Code for a function that calls ``hit(name)``, with ``closure_size`` free variables (so that it can
    replace the code of a closure); ``hit`` comes from the keyword default ``_forbid_hit``."""
    free = [f"_v{i}" for i in range(closure_size)]
    source = ("def _outer():\n" + "".join(f"    {v} = None\n" for v in free)
              + "    def _blocked(*args, _forbid_hit=None, **kwargs):\n"
              + (f"        ({', '.join(free)},)\n" if free else "")
              + f"        _forbid_hit({name!r})\n    return _blocked\n")
    scope: dict[str, Any] = {}
    exec(compile(source, "<forbidden>", "exec"), scope)  # noqa: S102 - our own template, a repr'd name
    return scope["_outer"]().__code__


def _block_function(fn: Any, name: str) -> bool:
    """Replace the code of a Python function (and of what it wraps) so that every alias of it refuses."""
    done = False
    seen = set()
    while isinstance(fn, types.FunctionType) and id(fn) not in seen:
        seen.add(id(fn))
        fn.__code__ = _blocked_code(name, len(fn.__code__.co_freevars))
        fn.__defaults__ = None
        fn.__kwdefaults__ = {"_forbid_hit": hit}
        done = True
        fn = getattr(fn, "__wrapped__", None)
    return done


def _block_aten(pattern: str) -> list[str]:
    import torch
    import torch._decomp
    names = sorted({n for n in torch._C._dispatch_get_all_op_names()         # "aten::lstm" is every overload
                    if fnmatch.fnmatchcase(n, pattern) or fnmatch.fnmatchcase(n.partition(".")[0], pattern)})
    blocked = []
    for full in names:
        ns, _, rest = full.partition("::")
        base, _, overload = rest.partition(".")
        packet = getattr(getattr(torch.ops, ns), base, None)
        if packet is None:
            continue
        op = getattr(packet, overload or "default", None)
        if op is None:
            continue
        described = f"`{full}` (what torch.{base}, and every module built on it, runs)"

        def kernel(*args: Any, _what: str = described, **kwargs: Any) -> NoReturn:
            hit(_what)

        library = torch.library.Library(ns, "IMPL")
        _STATE["libraries"].append(library)            # kept alive for the life of the worker
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")            # "overriding a previously registered kernel"
            for key in _KEYS:
                if torch._C._dispatch_has_kernel_for_dispatch_key(full, key):
                    library.impl(rest, kernel, key)
        tables = (torch._decomp.decomposition_table, *torch._decomp.global_decomposition_table.values())
        shared = {id(f) for table in tables for o, f in table.items() if o is not op}
        for key, fn in list(op.py_kernels.items()):   # Python decompositions (make_fx, torch.compile)
            if str(key) != "DispatchKey.Meta" and id(fn) not in shared:
                _block_function(fn, described)        # torch._decomp.decompositions.lstm_impl itself
            op.py_kernels[key] = kernel
        for table in tables:
            if op in table:
                if id(table[op]) not in shared:
                    _block_function(table[op], described)
                table[op] = kernel
        op._dispatch_cache.clear()
        blocked.append(full)
    return blocked


class _Refused:
    """Stands in for an object that is switched off: any use of it is refused."""

    def __init__(self, name: str):
        object.__setattr__(self, "_name", name)

    def __getattr__(self, attr: str) -> NoReturn:
        hit(object.__getattribute__(self, "_name"))

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        hit(object.__getattribute__(self, "_name"))


def _block_autograd() -> list[str]:
    import torch
    import torch.autograd.variable as variable
    what = "autograd (`backward`, `torch.autograd.grad`, `torch.func`)"
    engine = _Refused(what)
    variable.Variable._execution_engine = engine
    variable.ImperativeEngine = engine
    torch._C._ImperativeEngine = engine
    torch._C._EngineBase = engine
    return ["autograd's backward engine", *_block_aten("aten::_make_dual")]


def _seal_answer_key() -> None:
    """``course_lib.checkers`` becomes a stand-in; the other answer-key modules refuse every attribute."""
    import course_lib
    for name in list(sys.modules):
        if any(name == m or name.startswith(m + ".") for m in ANSWER_KEY):
            del sys.modules[name]
    for name in ANSWER_KEY:
        module = _SealedModule(name)
        sys.modules[name] = module
        setattr(course_lib, name.rpartition(".")[2], module)


class _SealedModule(types.ModuleType):
    """A module of the answer key as the sandbox sees it. ``check_*`` names (of course_lib.checkers) are
    functions that do nothing: in grading, the test cells' checks run in the trusted grader."""

    def __getattr__(self, attr: str) -> Any:
        if self.__name__ == "course_lib.checkers" and attr == "CheckFailed":
            return AssertionError
        if self.__name__ == "course_lib.checkers" and attr.startswith("check_"):
            def check(*args: Any, **kwargs: Any) -> None:
                return None
            check.__name__ = check.__qualname__ = attr
            return check
        if attr.startswith("__"):
            raise AttributeError(attr)
        hit(f"`{self.__name__}.{attr}` (the course's answer key)")


def install(forbidden: list[str]) -> list[str]:
    """Seal the answer key and switch off ``forbidden`` in this process; returns what was switched off.

    What this process (or the zygote's variant it was forked from) has done already is not done again."""
    if not _STATE["sealed"]:
        _seal_answer_key()
        _STATE["sealed"] = True
    done = []
    for item in forbidden:
        if item in _STATE["requested"]:
            continue
        _STATE["requested"].add(item)
        if item == "autograd":
            done += _block_autograd()
        elif item.startswith("aten::") or "::" in item:
            done += _block_aten(item)
        else:
            module, _, attr = item.rpartition(".")
            try:
                fn = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError):
                continue
            if _block_function(fn, f"`{item}`"):
                done.append(item)
    _STATE["installed"] += done
    return done
