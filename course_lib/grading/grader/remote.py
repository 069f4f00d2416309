"""The grader's stand-in for the student's function: :class:`RemoteFunction`, what a checker receives.

Calling it sends the arguments as plain arrays to the worker (:meth:`.worker.Worker.call`), waits at
most ``Limits.call_timeout`` and returns fresh tensors decoded from the reply; it copies the
post-call arguments back into the caller's tensors and lists (:func:`copy_back`), so a checker still
sees in-place changes; its ``__signature__`` is the student's parameter list, so the arity check
still works. The student's exception comes back as an exception of the same name (a real
``NotImplementedError``/``ValueError``... for built-in names, :func:`remote_exception`) raised from a
frame that shows the student's line (:func:`raise_from_student_line`).
"""
from __future__ import annotations

import builtins
import inspect
import keyword
import linecache
from typing import TYPE_CHECKING, Any

from .. import protocol

if TYPE_CHECKING:
    from .worker import Worker

__all__ = ["RemoteFunction", "RemoteError", "remote_exception", "raise_from_student_line", "copy_back"]


class RemoteError(Exception):
    """Base of the exceptions re-raised for the student's code when the name is not a built-in exception."""


_REMOTE_TYPES: dict[str, type] = {}


def remote_exception(name: str, message: str) -> BaseException:
    """An exception named like the student's: the built-in class itself where one exists, else a RemoteError."""
    if not (isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)):
        name = "Exception"
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(message)
        except Exception:  # noqa: BLE001 - classes with other constructors
            pass
    if name not in _REMOTE_TYPES:
        _REMOTE_TYPES[name] = type(name, (RemoteError,), {"__module__": "builtins"})
    return _REMOTE_TYPES[name](message)


def raise_from_student_line(exc: BaseException, where: Any) -> None:
    """Raise ``exc`` from a frame that points at the student's line, so checkers can quote it."""
    if not (isinstance(where, list) and len(where) == 3):
        raise exc
    lineno, func, line = where
    if not (type(lineno) is int and 1 <= lineno <= 100_000 and isinstance(func, str) and func.isidentifier()
            and not keyword.iskeyword(func) and isinstance(line, str)):
        raise exc
    filename = "<your notebook>"
    lines = [""] * (lineno - 1) + [line.replace("\n", " ") + "\n"]
    linecache.cache[filename] = (len("".join(lines)), None, lines, filename)
    source = "\n" * (lineno - 2) + f"def {func}():\n raise __exc__\n" if lineno >= 2 else \
        f"def {func}(): raise __exc__\n"
    scope: dict[str, Any] = {"__exc__": exc}
    exec(compile(source, filename, "exec"), scope)  # noqa: S102 - our template; only a checked identifier is inserted
    scope[func]()


def copy_back(args: list, after: Any, kwargs: dict, kw_after: Any, changed: Any) -> None:
    """Make the caller's arguments look as the student's function left them (for in-place checks)."""
    import torch
    if type(after) is not list or len(after) != len(args) or type(kw_after) is not dict:
        return

    def leaf(mine: Any, theirs: Any) -> None:
        if type(mine) is torch.Tensor and type(theirs) is torch.Tensor:
            with torch.no_grad():
                if mine.shape == theirs.shape and mine.dtype == theirs.dtype:
                    if not torch.equal(mine, theirs):
                        mine.copy_(theirs)
                else:
                    mine.data = theirs
        elif type(mine) in (list, tuple) and type(theirs) in (list, tuple):
            for a, b in zip(mine, theirs):
                leaf(a, b)

    for a, b in zip(args, after):
        leaf(a, b)
    for k, v in kwargs.items():
        if k in kw_after:
            leaf(v, kw_after[k])
    for path in changed if type(changed) is list else []:
        mine, theirs = _at(args, kwargs, path), _at(after, kw_after, path)
        if type(mine) is list and type(theirs) is list:
            mine[:] = [t.clone() if isinstance(t, torch.Tensor) else t for t in theirs]


def _at(args: Any, kwargs: Any, path: Any) -> Any:
    if type(path) is not list:
        return None
    node = args
    if path and path[0] == "kw":
        node, path = kwargs, path[1:]
    for p in path:
        try:
            node = node[p]
        except (IndexError, KeyError, TypeError):
            return None
    return node


def _signature(params: Any) -> inspect.Signature | None:
    if type(params) is not list:
        return None
    try:
        return inspect.Signature([inspect.Parameter(name, protocol.PARAM_KIND_OF[kind],
                                                    default=None if has_default else inspect.Parameter.empty)
                                  for name, kind, has_default in params])
    except (ValueError, TypeError, KeyError):
        return None


class RemoteFunction:
    """Stands in for the student's function ``name``; calling it runs the function in the worker."""

    def __init__(self, worker: Worker, name: str, params: Any = None):
        self._worker = worker
        self.__name__ = self.__qualname__ = name
        sig = _signature(params)
        if sig is not None:
            self.__signature__ = sig

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._worker.call(self.__name__, args, kwargs)

    def __repr__(self) -> str:
        return f"<function {self.__name__} (in the sandbox)>"
