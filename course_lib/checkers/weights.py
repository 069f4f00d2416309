"""Trained weights handed in by a student, checked before the trusted side uses them.

A training exercise asks the student's function to return the weights it trained as a **state dict of
plain tensors**, ``{name: tensor}``, named as the reference architecture names its parameters. Across
the grading sandbox such a dict arrives as fresh tensors decoded from bytes (nothing of the student's
objects survives); :func:`clean_state_dict` then checks it against the architecture and refuses, with
one sentence saying what was expected, anything that is not exactly those tensors:

- not an exact ``dict`` (an ``OrderedDict`` from ``model.state_dict()`` has to be turned into one);
- too many entries, missing or unexpected names;
- a value that is not an exact ``torch.Tensor`` (or ``numpy.ndarray``), of the wrong shape or dtype;
- NaN or infinity;
- more numbers in all than the architecture holds (checked per tensor, before anything is copied).

It returns new tensors made here; :func:`load_trained` loads them into a fresh reference model, which
the grader then evaluates itself (on data the student's code never received)::

    model = load_trained(result, lambda: char_model("gru", V, 128), "train_char_model")
    ce = cross_entropy(model, held_out)
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from ._core import fail

__all__ = ["clean_state_dict", "load_trained"]

_HOW = "return {name: p.detach().clone() for name, p in model.state_dict().items()}"


def _type_name(value: Any) -> str:
    t = type(value)
    module = getattr(t, "__module__", "builtins")
    return t.__qualname__ if module == "builtins" else f"{module}.{t.__qualname__}"


def clean_state_dict(result: Any, reference: nn.Module, name: str) -> dict[str, Tensor]:
    """Fresh float copies of the tensors of ``result``, a state dict for ``reference``'s architecture.

    Raises :class:`~course_lib.checkers.CheckFailed` with one sentence for anything else (see the module).
    """
    want = {k: v for k, v in reference.state_dict().items()}
    if type(result) is not dict:
        if result is None:
            fail(f"{name}: your {name} returned None; expected a dict of the trained tensors ({_HOW}).")
        fail(f"{name}: your {name} returned a {_type_name(result)}; expected a plain dict of the trained tensors "
             f"({_HOW}).")
    if dict.__len__(result) > 4 * len(want):
        fail(f"{name}: the dict you returned has {dict.__len__(result)} entries; the model has {len(want)} "
             f"tensors ({', '.join(want)}).")
    keys = list(dict.keys(result))
    bad_keys = [k for k in keys if type(k) is not str]
    if bad_keys:
        fail(f"{name}: the dict you returned has a key of type {_type_name(bad_keys[0])}; its keys must be the "
             f"parameter names {', '.join(want)}.")
    missing = [k for k in want if k not in keys]
    extra = [k for k in keys if k not in want]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected {', '.join(repr(k)[:60] for k in extra[:5])}{' ...' if len(extra) > 5 else ''}")
        fail(f"{name}: the dict you returned does not name the model's tensors ({'; '.join(parts)}); expected "
             f"exactly {', '.join(want)}, as model.state_dict() of the exercise's model names them.")
    clean: dict[str, Tensor] = {}
    for k, ref in want.items():
        value = dict.__getitem__(result, k)
        if type(value) is np.ndarray:
            if value.dtype.kind not in "biuf":
                fail(f"{name}: {k} is a NumPy array of dtype {value.dtype}; expected a {_dtype(ref)} tensor.")
        elif type(value) not in (Tensor, nn.Parameter):
            fail(f"{name}: {k} is a {_type_name(value)}; expected a plain torch.Tensor of shape "
                 f"{tuple(ref.shape)} (use p.detach().clone()).")
        got_shape = tuple(value.shape)
        if got_shape != tuple(ref.shape):
            fail(f"{name}: {k} has shape {got_shape}; the model's {k} has shape {tuple(ref.shape)} "
                 f"(train the exercise's model with its sizes).")
        got_dtype = str(value.dtype).replace("torch.", "")
        if got_dtype != _dtype(ref):
            fail(f"{name}: {k} is {got_dtype}; expected {_dtype(ref)}, the dtype of the model's parameters.")
        if isinstance(value, Tensor) and (value.layout != torch.strided or value.device.type != "cpu"):
            fail(f"{name}: {k} is a special tensor (layout {value.layout}, device {value.device}); "
                 f"return an ordinary CPU tensor.")
        t = torch.empty(ref.shape, dtype=ref.dtype)
        with torch.no_grad():
            t.copy_(torch.as_tensor(np.array(value, copy=True)) if type(value) is np.ndarray else value.detach())
        if not bool(torch.isfinite(t).all()):
            n_bad = int((~torch.isfinite(t)).sum())
            fail(f"{name}: {k} holds {n_bad} NaN or infinite values: training diverged (lower the learning rate "
                 f"or clip the gradients).")
        clean[k] = t
    return clean


def _dtype(t: Tensor) -> str:
    return str(t.dtype).replace("torch.", "")


def load_trained(result: Any, build: Callable[[], nn.Module], name: str) -> nn.Module:
    """A fresh model from ``build()`` holding the weights in ``result`` (checked by :func:`clean_state_dict`)."""
    model = build()
    model.load_state_dict(clean_state_dict(result, model, name), strict=True)
    model.eval()
    return model
