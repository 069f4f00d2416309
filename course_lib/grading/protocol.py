"""What crosses between the grader and the sandbox: plain data only, never pickles; and the names of
the operations on the two channels, defined here once for both ends.

A message is a small JSON header plus a list of ``.npy`` blobs, framed on a byte stream as

    [8-byte big-endian length][4-byte header length][header JSON][blob 0][blob 1]...

and the header describes a tree of values:

    None, bool, int, float (NaN and ±inf allowed), str,
    tuple / list / dict with str keys        (nested, at most ``Limits.max_depth`` deep),
    torch.Tensor / numpy.ndarray / NumPy scalar   (a blob, read with ``np.load(allow_pickle=False)``),
    anything else the child cannot send      (an ``Opaque`` placeholder that only carries a type name).

Decoding never calls into user code: every tensor the trusted side receives is a fresh
``torch.Tensor`` (or ``numpy.ndarray``) built from bytes that NumPy parsed, so a returned object can
fake nothing (no ``__eq__``, no ``__torch_function__``, no ``__array__`` survives the trip).
"""
from __future__ import annotations

import inspect
import io
import json
import math
import os
import re
import select
import struct
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ProtocolError", "WireLimits", "Opaque", "encode", "decode", "send", "recv", "opaque_type",
           "PARAM_KINDS", "PARAM_KIND_OF"]

_LEN = struct.Struct(">Q")
_HLEN = struct.Struct(">I")
_KINDS = "biufc"                      # bool, int, uint, float, complex: the only array dtypes accepted
_TYPE_NAME = re.compile(r"^[A-Za-z_][\w.<>]{0,119}$")


class ProtocolError(Exception):
    """A message that is malformed, too large, or not plain data."""


@dataclass(frozen=True)
class WireLimits:
    """Bounds on one message, checked before anything is allocated for it."""

    max_bytes: int = 256 * 2**20       # a whole framed message
    max_header: int = 4 * 2**20        # its JSON part
    max_nodes: int = 100_000           # values in the tree
    max_depth: int = 32
    max_str: int = 1 * 2**20           # characters in one string


# ----------------------------------------------------------------------------- placeholders

class Opaque:
    """Stands in for an object the child could not send as data; it only knows its type's name.

    Subclasses are made per type name (``opaque_type``), so a checker that reports
    ``type(value).__module__`` and ``__qualname__`` names the student's type, not this class.
    """

    __slots__ = ()
    #: the sandbox-side type name, ``module.Qualname``
    remote_type = "object"

    def __repr__(self) -> str:
        return f"<{self.remote_type} object>"


_OPAQUE_TYPES: dict[str, type] = {}


def opaque_type(name: str) -> type:
    """The placeholder class for the remote type ``name`` (validated; unusual names become ``object``)."""
    if not isinstance(name, str) or not _TYPE_NAME.match(name):
        name = "object"
    if name not in _OPAQUE_TYPES:
        module, _, qualname = name.rpartition(".")
        cls = type(qualname or name, (Opaque,), {"__slots__": (), "remote_type": name,
                                                 "__module__": module or "builtins",
                                                 "__qualname__": qualname or name})
        _OPAQUE_TYPES[name] = cls
    return _OPAQUE_TYPES[name]


def _type_name(value: Any) -> str:
    t = type(value)
    module = getattr(t, "__module__", "") or ""
    qualname = getattr(t, "__qualname__", "") or getattr(t, "__name__", "object")
    if not isinstance(module, str) or not isinstance(qualname, str):
        return "object"
    return qualname if module == "builtins" else f"{module}.{qualname}"


# ----------------------------------------------------------------------------- encoding

def _torch():
    """torch if it is already imported (the codec must not import it on the trusted side's behalf)."""
    import sys
    return sys.modules.get("torch")


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array(array, order="C", copy=True), allow_pickle=False)   # (0-d stays 0-d)
    return buf.getvalue()


def encode(value: Any, limits: WireLimits = WireLimits()) -> bytes:
    """One value as a message body (header + blobs), without the outer length prefix.

    Exact ``torch.Tensor``/``numpy.ndarray`` of a numeric dtype become blobs; their subclasses and
    anything else that is not plain data become ``{"t": "opaque"}`` nodes carrying the type name.
    """
    blobs: list[bytes] = []
    count = [0]

    def node(v: Any, depth: int) -> Any:
        count[0] += 1
        if count[0] > limits.max_nodes or depth > limits.max_depth:
            raise ProtocolError("the value is too large or too deeply nested to send")
        t = type(v)
        if v is None:
            return {"t": "none"}
        if t is bool:
            return {"t": "bool", "v": bool(v)}
        if t is int:
            if abs(v) > 2**63:
                return {"t": "float", "v": _float(float(v))} if abs(v) < 2**1000 else {"t": "opaque", "type": "int"}
            return {"t": "int", "v": int(v)}
        if t is float:
            return {"t": "float", "v": _float(v)}
        if t is str:
            if len(v) > limits.max_str:
                v = str.__getitem__(v, slice(0, limits.max_str))
            return {"t": "str", "v": str(v)}
        if t is tuple or t is list:
            items = (tuple.__iter__ if t is tuple else list.__iter__)(v)
            return {"t": t.__name__, "items": [node(i, depth + 1) for i in items]}
        if t is dict:
            pairs = []
            for k, i in dict.items(v):
                if type(k) is not str:
                    return {"t": "opaque", "type": "dict"}     # only str keys travel
                pairs.append([str(k), node(i, depth + 1)])
            return {"t": "dict", "items": pairs}
        if t is np.ndarray:
            return _array_node(v, "numpy", None)
        if isinstance(v, np.generic) and t.__module__ == "numpy" and np.dtype(t).kind in _KINDS:
            blobs.append(_npy(np.asarray(v)))
            return {"t": "npscalar", "blob": len(blobs) - 1}
        torch = _torch()
        if torch is not None and (t is torch.Tensor or t is torch.nn.Parameter):   # torch's own classes only
            return _tensor_node(v, torch)
        return {"t": "opaque", "type": _type_name(v)}

    def _array_node(a: np.ndarray, kind: str, torch_dtype: str | None) -> dict:
        if a.dtype.kind not in _KINDS or a.dtype.fields is not None:
            return {"t": "opaque", "type": f"numpy.ndarray[{a.dtype.kind}]".replace("[", "_").replace("]", "")}
        blobs.append(_npy(a))
        out = {"t": "array", "kind": kind, "blob": len(blobs) - 1}
        if torch_dtype:
            out["torch_dtype"] = torch_dtype
        return out

    def _tensor_node(v: Any, torch: Any) -> dict:
        if v.layout != torch.strided or v.is_nested or v.is_quantized or v.device.type != "cpu":
            return {"t": "opaque", "type": "torch.Tensor_special"}
        d = v.detach()
        special = None
        if d.dtype == torch.bfloat16:
            d, special = d.float(), "bfloat16"
        out = _array_node(np.array(d.resolve_conj().resolve_neg().numpy(), copy=True), "torch", special)
        if v.requires_grad:
            out["requires_grad"] = True
        return out

    header = json.dumps({"v": node(value, 0)}, allow_nan=True, separators=(",", ":")).encode()
    if len(header) > limits.max_header:
        raise ProtocolError("the message header is too large")
    parts = [_HLEN.pack(len(header)), header, _LEN.pack(len(blobs))]
    for b in blobs:
        parts += [_LEN.pack(len(b)), b]
    body = b"".join(parts)
    if len(body) > limits.max_bytes:
        raise ProtocolError(f"the message is {len(body)} bytes, more than the limit of {limits.max_bytes}")
    return body


def _float(x: float) -> Any:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


# ----------------------------------------------------------------------------- decoding

def decode(body: bytes, limits: WireLimits = WireLimits(), *, as_torch: bool = True) -> Any:
    """The value a message body describes; raises :class:`ProtocolError` on anything unexpected.

    Arrays are loaded with ``np.load(allow_pickle=False)`` and copied; with ``as_torch`` those sent
    as tensors come back as fresh ``torch.Tensor`` objects.
    """
    try:
        return _decode(memoryview(body), limits, as_torch)
    except ProtocolError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure is a malformed message
        raise ProtocolError(f"malformed message ({type(exc).__name__}: {str(exc)[:200]})") from None


def _decode(body: memoryview, limits: WireLimits, as_torch: bool) -> Any:
    if len(body) > limits.max_bytes:
        raise ProtocolError("message too large")
    (hlen,) = _HLEN.unpack_from(body, 0)
    if hlen > limits.max_header:
        raise ProtocolError("header too large")
    pos = _HLEN.size
    header = json.loads(bytes(body[pos:pos + hlen]).decode("utf-8"))
    pos += hlen
    (nblobs,) = _LEN.unpack_from(body, pos)
    pos += _LEN.size
    if nblobs > limits.max_nodes:
        raise ProtocolError("too many arrays")
    blobs = []
    for _ in range(nblobs):
        (n,) = _LEN.unpack_from(body, pos)
        pos += _LEN.size
        if pos + n > len(body):
            raise ProtocolError("truncated array")
        blobs.append(body[pos:pos + n])
        pos += n
    if pos != len(body):
        raise ProtocolError("trailing bytes after the last array")
    torch = _torch() if as_torch else None
    count = [0]

    def load(i: Any) -> np.ndarray:
        if type(i) is not int or not 0 <= i < len(blobs):
            raise ProtocolError("bad array reference")
        raw = bytes(blobs[i])
        _check_npy_size(raw)
        a = np.load(io.BytesIO(raw), allow_pickle=False)
        if type(a) is not np.ndarray or a.dtype.kind not in _KINDS or a.dtype.fields is not None:
            raise ProtocolError("an array of an unsupported dtype")
        return np.array(a, copy=True)

    def value(n: Any, depth: int) -> Any:
        count[0] += 1
        if count[0] > limits.max_nodes or depth > limits.max_depth or type(n) is not dict:
            raise ProtocolError("malformed or too large value")
        t = n.get("t")
        if t == "none":
            return None
        if t == "bool":
            return bool(n["v"]) if type(n["v"]) is bool else _bad()
        if t == "int":
            return int(n["v"]) if type(n["v"]) is int else _bad()
        if t == "float":
            v = n["v"]
            if type(v) is str and v in ("nan", "inf", "-inf"):
                return float(v)
            return float(v) if type(v) in (int, float) else _bad()
        if t == "str":
            v = n["v"]
            return v if type(v) is str and len(v) <= limits.max_str else _bad()
        if t in ("tuple", "list"):
            items = [value(i, depth + 1) for i in _list(n["items"])]
            return tuple(items) if t == "tuple" else items
        if t == "dict":
            out = {}
            for pair in _list(n["items"]):
                k, v = _list(pair)
                if type(k) is not str:
                    _bad()
                out[k] = value(v, depth + 1)
            return out
        if t == "array":
            a = load(n["blob"])
            if n.get("kind") == "torch" and torch is not None:
                tensor = torch.from_numpy(a)
                if n.get("torch_dtype") == "bfloat16":
                    tensor = tensor.to(torch.bfloat16)
                if n.get("requires_grad") is True and tensor.dtype.is_floating_point:
                    tensor.requires_grad_(True)
                return tensor
            return a
        if t == "npscalar":
            a = load(n["blob"])
            if a.shape != ():
                _bad()
            return a[()]
        if t == "opaque":
            return opaque_type(n.get("type", "object"))()
        return _bad()

    return value(header.get("v") if type(header) is dict else _bad(), 0)


def _check_npy_size(raw: bytes) -> None:
    """Refuse an ``.npy`` blob whose header announces more data than the blob holds (before allocating)."""
    from numpy.lib import format as npy_format
    buf = io.BytesIO(raw)
    major, _ = npy_format.read_magic(buf)
    read_header = {1: npy_format.read_array_header_1_0, 2: npy_format.read_array_header_2_0}.get(major)
    if read_header is None:
        raise ProtocolError("unsupported .npy version")
    shape, _, dtype = read_header(buf)
    if dtype.hasobject or dtype.kind not in _KINDS:
        raise ProtocolError("an array of an unsupported dtype")
    if math.prod(shape) * dtype.itemsize != len(raw) - buf.tell():
        raise ProtocolError("an array whose size does not match its data")


def _list(x: Any) -> list:
    return x if type(x) is list else _bad()


def _bad() -> Any:
    raise ProtocolError("malformed value")


# ----------------------------------------------------------------------------- framing on a socket/pipe

def send(fd: int, body: bytes) -> None:
    """Write one framed message (length prefix + body) to the file descriptor ``fd``."""
    data = memoryview(_LEN.pack(len(body)) + body)
    while data:
        n = os.write(fd, data)
        data = data[n:]


def recv(fd: int, limits: WireLimits = WireLimits(), deadline: float | None = None) -> bytes:
    """Read one framed message body from ``fd``; ``deadline`` is a ``time.monotonic()`` value.

    Raises ``TimeoutError`` when the deadline passes, ``EOFError`` when the other end closed, and
    :class:`ProtocolError` when the announced length is over the limit.
    """
    (n,) = _LEN.unpack(_read_exact(fd, _LEN.size, deadline))
    if n > limits.max_bytes:
        raise ProtocolError(f"a message of {n} bytes announced, more than the limit of {limits.max_bytes}")
    return _read_exact(fd, n, deadline)


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                raise TimeoutError
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


# ----------------------------------------------------------------------------- the two channels' vocabulary
# The worker channel, these messages: grader/worker.py (the grader's end) <-> sandboxed/worker.py (the student's).
CELLS, FORBID = "cells", "forbid"                       # the first message: the code cells, what to switch off
EVENT, EVENT_CELL, EVENT_CELL_DONE, EVENT_READY = "event", "cell", "cell_done", "ready"   # while the cells run
OP_DESCRIBE, OP_CALL = "describe", "call"               # then the grader's requests ({"op": ..., "id": n})
FATAL, FORBIDDEN = "fatal", "forbidden"                 # a worker's last word: it failed / a forbidden call
# The zygote channel, JSON packets: grader/zygote.py <-> sandboxed/zygote.py (see that module for each).
ZYGOTE_SPAWN, ZYGOTE_VARIANT, ZYGOTE_STATUS, ZYGOTE_CLEANUP, ZYGOTE_PRELOAD = \
    "spawn", "variant", "status", "cleanup", "preload"

#: How a parameter of the student's function travels (its ``inspect`` kind by name), both ways.
PARAM_KINDS = {inspect.Parameter.POSITIONAL_ONLY: "positional_only",
               inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional_or_keyword",
               inspect.Parameter.VAR_POSITIONAL: "var_positional",
               inspect.Parameter.KEYWORD_ONLY: "keyword_only",
               inspect.Parameter.VAR_KEYWORD: "var_keyword"}
PARAM_KIND_OF = {name: kind for kind, name in PARAM_KINDS.items()}
