"""The machinery every checker shares: call the student's function safely, turn what it
returns into clean tensors, compare with the oracle, and word one message a student can act on.

The order of the checks is the order in which a student debugs:

1. is it a function, does it take the right number of arguments;
2. did it run (an exception is reported with the shapes it was called with);
3. did it leave its inputs alone (no in-place changes to weights or states);
4. the structure of the result (a tuple ``(h, c)`` where one is expected, ``None``...);
5. every tensor: its type (exactly ``torch.Tensor`` or ``numpy.ndarray``), shape (with the
   meaning of each axis), dtype, finiteness;
6. the values, against an oracle computed in float64 from pristine copies of the inputs.

Nothing the student returns is trusted: each tensor is copied into a fresh tensor made here,
and every comparison is arithmetic on those copies.
"""
from __future__ import annotations

import functools
import inspect
import math
import os
import textwrap
import traceback
import types
from dataclasses import dataclass
from typing import Any, Callable, NoReturn, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "CheckFailed", "Leaf", "Mismatch", "student_facing", "rerun_call", "fail", "positive_int", "Randn", "describe",
    "check_callable", "call_student", "unpack_nested", "as_clean_tensor", "check_finite", "compare", "matches",
]

Axes = tuple  # ((axis name, size), ...), e.g. (("batch", 3), ("hidden", 5))


class CheckFailed(AssertionError):
    """Raised by every checker when the student's function is not right yet; the message says why.

    ``mistakes`` holds the labels of the catalogue entries (:mod:`.mistakes`) the answer matched, so
    that grading can record them without reading the message.
    """

    def __init__(self, message: str = "", mistakes: Sequence[str] = ()):
        super().__init__(message)
        self.mistakes = tuple(mistakes)

    def _render_traceback_(self) -> list[str]:
        """How IPython (a notebook, nbgrader's Validate) shows this error: the student's own frames and the
        message, without the checker's insides (IPython calls this hook on an exception that has it)."""
        from IPython import get_ipython
        shell = get_ipython()
        # The message wrapped at 80 columns, so that `nbgrader validate` in a terminal, which cuts long lines,
        # shows all of it; the text is the same.
        head = f"{type(self).__name__}: "
        wrapped = textwrap.fill(str(self), 80, initial_indent=" " * len(head), break_long_words=False,
                                break_on_hyphens=False)[len(head):]
        return shell.InteractiveTB.structured_traceback(type(self), type(self)(wrapped),
                                                        _outside_checkers(self.__traceback__))


def _outside_checkers(tb: types.TracebackType | None) -> types.TracebackType | None:
    """The traceback ``tb`` without the frames of this package's modules."""
    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    kept = []
    while tb is not None:
        if not os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(here):
            kept.append(tb)
        tb = tb.tb_next
    out = None
    for t in reversed(kept):
        out = types.TracebackType(out, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return out


def fail(message: str, mistakes: Sequence[str] = ()) -> NoReturn:
    """Stop the check with one message (no chained traceback from inside the checker).

    A ``message`` from :func:`._engine.explain` carries the mistakes it names; ``mistakes`` adds others.
    """
    raise CheckFailed(message, (*getattr(message, "mistakes", ()), *mistakes)) from None


def student_facing(check: Callable) -> Callable:
    """Make a public checker raise its ``CheckFailed`` from its own frame only.

    A student sees their own cell and the message: the wrapper's frame sets ``__tracebackhide__``,
    which IPython (and pytest) honour, and the helper calls behind it are cut off. When the check
    was called with options (a hidden test's ``seed=``, ``batch=``...), the message ends with the
    call that reproduces it, so the student can rerun exactly that case in the notebook.
    """
    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        __tracebackhide__ = True  # noqa: F841 - read by IPython's traceback formatter
        try:
            return check(*args, **kwargs)
        except CheckFailed as exc:
            message, extra = str(exc), dict(vars(exc))
        if kwargs:
            message += f" To rerun this check in your notebook: {rerun_call(check.__name__, args, kwargs)}."
        new = CheckFailed(message)
        vars(new).update(extra)          # anything a checker attached to the exception travels on
        raise new from None
    return wrapper


def rerun_call(checker: str, args: tuple, kwargs: dict) -> str:
    """``checkers.check_rnn_layer(rnn_layer, seed=5, batch=1)``: the call a student types to rerun a check."""
    names = [getattr(a, "__name__", "your_function") if callable(a) else repr(a) for a in args]
    return f"checkers.{checker}({', '.join(names + [f'{k}={v!r}' for k, v in kwargs.items()])})"


def positive_int(name: str, value: Any) -> int:
    """Validate a shape option of a checker (``batch=3`` and so on)."""
    if type(value) is not int or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


class Randn:
    """Seeded float32 normal samples, drawn in turn from one generator: ``rand(3, 4, scale=0.5)``."""

    def __init__(self, seed: int):
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, *shape: int, scale: float = 1.0) -> Tensor:
        return torch.randn(*shape, generator=self.gen, dtype=torch.float32) * scale


# ----------------------------------------------------------------------------- describing things

def describe(value: Any) -> str:
    """A short description for messages: a tensor by its shape, tuples recursively."""
    if isinstance(value, (Tensor, np.ndarray)):
        return str(tuple(value.shape))
    if isinstance(value, tuple):
        return "(" + ", ".join(describe(v) for v in value) + ")"
    if isinstance(value, list):
        return "[" + ", ".join(describe(v) for v in value) + "]"
    return repr(value)


def shape_str(axes: Axes) -> str:
    """``(batch=3, hidden=5)``; a scalar is ``()``."""
    if len(axes) == 1:
        return f"({axes[0][0]}={axes[0][1]},)"
    return "(" + ", ".join(f"{n}={s}" for n, s in axes) + ")"


def position_str(axes: Axes, index: Sequence[int]) -> str:
    """``[batch=1, hidden=3]``: an element's index with the meaning of each axis."""
    return "[" + ", ".join(f"{n}={i}" for (n, _), i in zip(axes, index)) + "]"


def _type_name(value: Any) -> str:
    t = type(value)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


# ----------------------------------------------------------------------------- callable and arity

def check_callable(fn: Any, name: str, params: Sequence[str], kwargs: dict | None = None) -> None:
    """Fail with one sentence if ``fn`` is not a function that accepts ``name(*params, **kwargs)``."""
    kwargs = kwargs or {}
    call = f"{name}({', '.join(list(params) + [f'{k}=...' for k in kwargs])})"
    if not callable(fn):
        fail(f"{name}: expected a function {call}, got {_type_name(fn)} {_short_repr(fn)}; "
             f"pass the function itself (no parentheses after its name).")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):   # builtins without a signature: let the call decide
        return
    try:
        sig.bind(*params, **kwargs)
    except TypeError:
        fail(f"{name}: your function takes {sig} but the exercise calls it as {call} "
             f"({len(params)} positional argument{'s' if len(params) != 1 else ''}"
             f"{''.join(f' and the keyword {k}=' for k in kwargs)}); change its parameters to match.")


def _short_repr(value: Any) -> str:
    try:
        text = " ".join(repr(value).split())       # one line, even for a tensor's repr
    except Exception:  # noqa: BLE001 - a broken __repr__ must not break the message
        return ""
    return f"({text[:60]}{'…' if len(text) > 60 else ''})"


# ----------------------------------------------------------------------------- calling the student

def _clone(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.detach().clone()
    if isinstance(value, tuple):
        return tuple(_clone(v) for v in value)
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


def _tensors_of(name: str, value: Any) -> list[tuple[str, Any]]:
    """Flatten an argument into (display name, leaf) pairs: ``hx`` -> ``hx[0]``, ``hx[1]``."""
    if isinstance(value, (tuple, list)):
        out = []
        for i, v in enumerate(value):
            out += _tensors_of(f"{name}[{i}]", v)
        return out
    return [(name, value)]


def _same(given: Any, pristine: Any) -> bool:
    if not isinstance(pristine, Tensor):
        return True
    if type(given) is not Tensor or given.shape != pristine.shape or given.dtype != pristine.dtype:
        return False
    with torch.no_grad():
        return bool(torch.equal(given.detach(), pristine))


_SKIP_DIRS = tuple(os.path.dirname(m.__file__) + os.sep for m in (torch, np)) + (
    os.path.dirname(__file__) + os.sep,)


def _student_line(tb) -> str:
    """`` (line 7 in lstm_cell: `f, i, g, o = ...`)`` for the innermost frame outside torch/numpy/checkers."""
    frames = [f for f in traceback.extract_tb(tb) if not f.filename.startswith(_SKIP_DIRS)]
    if not frames:
        return ""
    f = frames[-1]
    code = f" `{f.line.strip()}`" if f.line else ""
    return f" (line {f.lineno} in {f.name}:{code})"


def call_student(fn: Callable, name: str, args: dict[str, Any], kwargs: dict | None = None,
                 *, note: str = "", error_hint: str = "") -> Any:
    """Call ``fn`` on fresh copies of ``args`` and return what it returned.

    Fails with one message if it raises, if it changed any of its inputs in place, or if it
    left a torch function/dispatch mode switched on. Global switches the student may flip
    (grad mode, default dtype) are put back.
    """
    kwargs = kwargs or {}
    given = {k: _clone(v) for k, v in args.items()}
    passed = {k: list(v) if isinstance(v, list) else None for k, v in given.items()}  # list identities
    leaves = [(n, t) for k, v in given.items() for n, t in _tensors_of(k, v)]
    grad, dtype = torch.is_grad_enabled(), torch.get_default_dtype()
    modes = _mode_depths()
    try:
        result = fn(*given.values(), **kwargs)
    except NotImplementedError:   # the exercise's stub, still in place
        fail(f"{name}: not implemented yet — replace raise NotImplementedError() in "
             f"{getattr(fn, '__name__', name)} with your code.")
    except Exception as exc:  # noqa: BLE001 - anything the student's code raises is reported
        called = ", ".join(f"{k}={describe(v)}" for k, v in args.items())
        called += "".join(f", {k}={v!r}" for k, v in kwargs.items())
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        text = (": " + text[:240] + ("…" if len(text) > 240 else "")) if text else ""
        hint = error_hint if isinstance(exc, RuntimeError) and _is_shape_error(text) else ""
        fail(f"{name}: your {name} raised {type(exc).__name__}{text}{_student_line(exc.__traceback__)} "
             f"when called with {called}.{' ' + note if note else ''}{' ' + hint if hint else ''}")
    finally:
        torch.set_grad_enabled(grad)
        torch.set_default_dtype(dtype)
        left_on = _mode_depths() != modes
        _restore_mode_depths(modes)
    if left_on:
        fail(f"{name}: your {name} left a torch function or dispatch mode switched on; "
             f"exit every `with` block it enters before returning.")
    for k, lst in passed.items():
        if lst is not None and (len(given[k]) != len(lst) or any(a is not b for a, b in zip(given[k], lst))):
            fail(f"{name}: your {name} changed the list {k} it was given (assigned to or removed its items); "
                 f"build and return a new list and leave the caller's list as it was.")
    pristine = dict(leaf for k, v in args.items() for leaf in _tensors_of(k, v))
    for n, t in leaves:
        if not _same(t, pristine[n]):
            fail(f"{name}: your {name} modified its argument {n} in place (with `+=`, `*=`, an "
                 f"`add_`-style method or an assignment into it); compute new tensors instead, "
                 f"because the caller still needs the original {n}.")
    return result


def _mode_depths() -> tuple[int, int]:
    f = getattr(torch._C, "_len_torch_function_stack", lambda: 0)
    d = getattr(torch._C, "_len_torch_dispatch_stack", lambda: 0)
    return f(), d()


def _restore_mode_depths(depths: tuple[int, int]) -> None:
    """Pop the modes a student's function pushed and never left, so the session keeps working."""
    pops = (getattr(torch._C, "_pop_torch_function_stack", None), getattr(torch._C, "_pop_torch_dispatch_stack", None))
    for k, pop in enumerate(pops):
        while pop is not None and _mode_depths()[k] > depths[k]:
            pop()


def _is_shape_error(text: str) -> bool:
    return any(s in text for s in ("cannot be multiplied", "size of tensor a", "must match the size",
                                   "shape", "size mismatch", "Dimension out of range"))


# ----------------------------------------------------------------------------- results as tensors

@dataclass(frozen=True)
class Leaf:
    """One tensor the student's function must return: its name in messages and its axes."""

    what: str       # "h", "output", "dL/dw_hh"
    axes: Axes      # (("batch", 3), ("hidden", 5))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(s for _, s in self.axes)


def unpack_nested(result: Any, structure: Any, name: str, *, top: bool = True) -> dict[str, Any]:
    """Split a nested tuple result by ``structure`` (leaf names in nested tuples).

    ``structure`` is ``"h"``, ``("h", "c")`` or ``("output", ("h_n", "c_n"))``. Tuples and
    lists are read with the base-class methods, so an overridden ``__iter__`` cannot lie.
    """
    expected = _structure_str(structure)
    if result is None:
        if top:
            fail(f"{name}: your {name} returned None — did you forget `return`? Expected {expected}.")
        fail(f"{name}: your {name} returned None in place of {expected}.")
    if isinstance(structure, str):
        if isinstance(result, (tuple, list)):
            items = seq_items(result)
            stack = " (torch.stack turns a list of tensors into one tensor)" if isinstance(result, list) and items \
                and all(isinstance(i, Tensor) for i in items) else ""
            subject = f"your {name} returned" if top else f"{structure} is"
            fail(f"{name}: {subject} a {type(result).__name__} of {len(items)} items where a single tensor"
                 f"{' ' + structure if top else ''} is expected{stack}.")
        return {structure: result}
    if not isinstance(result, (tuple, list)):
        kind = f"a single tensor of shape {describe(result)}" if isinstance(result, (Tensor, np.ndarray)) \
            else f"a {_type_name(result)}"
        fail(f"{name}: your {name} returned {kind}; expected a tuple {expected}.")
    items = seq_items(result)
    if len(items) != len(structure):
        fail(f"{name}: your {name} returned a {type(result).__name__} of {len(items)} items; "
             f"expected a tuple {expected}.")
    out: dict[str, Any] = {}
    for item, sub in zip(items, structure):
        out.update(unpack_nested(item, sub, name, top=False))
    return out


def _seq_len(seq) -> int:
    return tuple.__len__(seq) if isinstance(seq, tuple) else list.__len__(seq)


def seq_items(seq) -> list:
    """The items of a list or tuple as the built-in type holds them (a subclass's __getitem__ is not called)."""
    n = _seq_len(seq)
    get = tuple.__getitem__ if isinstance(seq, tuple) else list.__getitem__
    return [get(seq, i) for i in range(n)]


def _structure_str(structure: Any) -> str:
    if isinstance(structure, str):
        return structure
    return "(" + ", ".join(_structure_str(s) for s in structure) + ")"


def as_clean_tensor(value: Any, leaf: Leaf, name: str, dtype: torch.dtype = torch.float32) -> Tensor:
    """A fresh float tensor holding the student's ``value``, after checking type, shape and dtype.

    Only an exact ``torch.Tensor`` or an exact ``numpy.ndarray`` is accepted: subclasses and
    look-alikes can override comparisons and arithmetic, so they are refused with one sentence.
    """
    what, want = leaf.what, shape_str(leaf.axes)
    if value is None:
        fail(f"{name}: your {name} returned None for {what}; expected a tensor of shape {want}.")
    from_numpy = False
    if type(value) is np.ndarray:
        if value.dtype.kind not in "biuf":
            fail(f"{name}: {what} is a NumPy array of dtype {value.dtype}; expected a float32 tensor of shape {want}.")
        value = torch.tensor(np.array(value, copy=True))
        from_numpy = True
    elif type(value) is not Tensor:
        if isinstance(value, Tensor):
            fail(f"{name}: {what} is a {_type_name(value)}, a subclass of torch.Tensor; return a plain "
                 f"torch.Tensor (subclasses can change how comparisons behave, so the checker refuses them).")
        if isinstance(value, np.ndarray):
            fail(f"{name}: {what} is a {_type_name(value)}, a subclass of numpy.ndarray; return a plain torch.Tensor.")
        if isinstance(value, (list, tuple)):
            fail(f"{name}: {what} is a {type(value).__name__} of {_seq_len(value)} items; expected one tensor "
                 f"of shape {want} (torch.stack turns a list of per-step tensors into one tensor).")
        fail(f"{name}: {what} is a {_type_name(value)}; expected a torch.Tensor of shape {want}.")
    if value.layout != torch.strided or value.is_nested or value.is_quantized or value.device.type == "meta":
        fail(f"{name}: {what} is a special tensor (layout {value.layout}, device {value.device}); "
             f"return an ordinary dense torch.Tensor.")
    got = tuple(value.shape)
    if got != leaf.shape:
        fail(f"{name}: expected {what} of shape {want}, got {got}{_shape_hint(got, leaf.shape)}.")
    if value.dtype != dtype:
        why = " (NumPy computes in float64 by default)" if from_numpy else \
            " (the inputs are float32; a tensor made with a different dtype has crept in)"
        fail(f"{name}: expected {what} to be {_dtype(dtype)}, got {_dtype(value.dtype)}{why}.")
    clean = torch.empty(leaf.shape, dtype=dtype)
    with torch.no_grad():
        clean.copy_(value.detach())
    return clean


def _dtype(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _shape_hint(got: tuple, want: tuple) -> str:
    if len(got) == len(want) and got == want[::-1]:
        return " — the axes are the wrong way round (check the order of each matmul)"
    if sorted(got) == sorted(want):
        return " — the right sizes in the wrong order of axes"
    if len(got) < len(want) and tuple(s for s in got if s != 1) == tuple(s for s in want if s != 1):
        return (" — an axis of size 1 is missing: squeeze() drops every axis of size 1, the batch axis too when "
                "the batch holds one sample; use squeeze(dim) on the axis you mean, or index it")
    if tuple(s for s in got if s != 1) == tuple(s for s in want if s != 1):
        return " — an axis of size 1 too many or too few"
    if math.prod(got) == math.prod(want):
        return " — the right number of elements in a different shape"
    return ""


def check_finite(t: Tensor, leaf: Leaf, name: str, hint: str = "") -> None:
    """Fail if the clean tensor ``t`` holds NaN or infinity."""
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        n_nan, n_inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
        first = tuple(int(i) for i in bad.nonzero()[0])
        fail(f"{name}: {leaf.what} contains non-finite values ({n_nan} NaN, {n_inf} inf; the first at "
             f"{position_str(leaf.axes, first)}). "
             + (hint or "With the checker's moderate random inputs every value should be finite: look for "
                        "an overflow (exp of a large number), a division by zero or a log of 0."))


# ----------------------------------------------------------------------------- comparing values

@dataclass(frozen=True)
class Mismatch:
    """Where and by how much a tensor differs from the expected one."""

    max_err: float
    index: tuple[int, ...]
    got: float
    expected: float
    allowed: float      # the error allowed at that element
    n_bad: int
    numel: int


def compare(got: Tensor, expected: Tensor, atol: float, rtol: float) -> Mismatch | None:
    """``None`` if ``|got - expected| <= atol·s + rtol·|expected|`` everywhere, else the worst element.

    ``s = max(1, max |expected|)`` scales the absolute tolerance with the size of the numbers, so
    that float32 rounding in a large gradient is not mistaken for a wrong answer.
    """
    if tuple(got.shape) != tuple(expected.shape):
        return Mismatch(math.inf, (), math.nan, math.nan, 0.0, got.numel(), got.numel())
    g, e = got.double(), expected.double()
    err = (g - e).abs()
    scale = max(1.0, float(e.abs().max())) if e.numel() else 1.0
    allowed = atol * scale + rtol * e.abs()
    bad = ~(err <= allowed)                        # NaN compares False, so it counts as bad
    n_bad = int(bad.sum())
    max_err = float(err.max()) if err.numel() else 0.0
    if n_bad == 0 and math.isfinite(max_err):
        return None
    flat = int(torch.nan_to_num(err, nan=math.inf).reshape(-1).argmax())
    index = tuple(int(i) for i in np.unravel_index(flat, tuple(err.shape)))
    return Mismatch(max_err, index, float(g.reshape(-1)[flat]), float(e.reshape(-1)[flat]),
                    float(allowed.reshape(-1)[flat]), n_bad, err.numel())


def matches(got: Sequence[Tensor], expected: Sequence[Tensor], atol: float, rtol: float) -> bool:
    """True if every tensor of ``got`` is close to the corresponding one of ``expected``."""
    return len(got) == len(expected) and all(compare(g, e, atol, rtol) is None for g, e in zip(got, expected))


def mismatch_str(leaf: Leaf, m: Mismatch) -> str:
    """``max abs error 0.31 at [batch=1, hidden=3] (got 0.2, expected -0.1; allowed 1.0e-05)``."""
    return (f"max abs error {m.max_err:.3g} at {position_str(leaf.axes, m.index)} "
            f"(got {m.got:.4g}, expected {m.expected:.4g}; allowed error {m.allowed:.1e}; "
            f"{m.n_bad} of {m.numel} elements off)")
