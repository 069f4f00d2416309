"""The wire format between the trusted grader and the sandbox: plain data in, plain data out, nothing else.

Does every value a checker passes or a student returns survive the trip exactly (dtype, shape, NaN,
tuple vs list)? Does anything that could carry behaviour (a subclass, a pickle, an object) come back
as an inert placeholder or get refused, before any memory is allocated for it?
"""
from __future__ import annotations

import io
import json
import math
import os
import struct

import numpy as np
import pytest
import torch

from course_lib.grading import protocol
from course_lib.grading.protocol import Opaque, ProtocolError, WireLimits, decode, encode


def roundtrip(value, **kw):
    return decode(encode(value), **kw)


def test_nested_values_come_back_equal_and_with_their_types():
    value = {"a": (1, 2.5, None, True, "text"), "b": [torch.arange(6, dtype=torch.float32).reshape(2, 3)],
             "c": np.arange(4, dtype=np.float64), "big": 2**62, "neg": -7}
    got = roundtrip(value)
    assert type(got["a"]) is tuple and type(got["b"]) is list
    assert got["a"] == (1, 2.5, None, True, "text") and got["big"] == 2**62 and got["neg"] == -7
    t = got["b"][0]
    assert type(t) is torch.Tensor and t.dtype == torch.float32 and t.shape == (2, 3)
    assert torch.equal(t, torch.tensor([[0.0, 1, 2], [3, 4, 5]]))
    assert type(got["c"]) is np.ndarray and got["c"].dtype == np.float64
    assert np.array_equal(got["c"], [0.0, 1, 2, 3])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.bool,
                                   torch.complex64])
def test_tensor_dtypes_survive(dtype):
    t = (torch.arange(5) % 2).to(dtype)
    got = roundtrip(t)
    assert type(got) is torch.Tensor and got.dtype == dtype and torch.equal(got, t)


def test_non_finite_floats_and_a_non_contiguous_tensor():
    got = roundtrip((float("nan"), float("inf"), -math.inf, torch.arange(6.0).reshape(2, 3).T))
    assert math.isnan(got[0]) and got[1] == math.inf and got[2] == -math.inf
    assert torch.equal(got[3], torch.tensor([[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]))


def test_a_parameter_arrives_as_a_plain_tensor():
    got = roundtrip(torch.nn.Parameter(torch.ones(2)))
    assert type(got) is torch.Tensor and got.requires_grad and torch.equal(got.detach(), torch.ones(2))


def test_numpy_scalars_stay_numpy_scalars():
    got = roundtrip((np.float32(1.5), np.float64(2.0), np.int64(3)))
    assert [type(v) for v in got] == [np.float32, np.float64, np.int64] and got == (1.5, 2.0, 3)


def test_a_tensor_from_the_wire_shares_no_memory_and_has_no_grad_history():
    t = torch.ones(3, requires_grad=True) * 2          # a non-leaf with a graph
    got = roundtrip(t)
    assert got.grad_fn is None and got.requires_grad and got.is_leaf
    got.data.add_(1)
    assert torch.equal(t.detach(), torch.full((3,), 2.0))


class SneakyTensor(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return True


class SneakyArray(np.ndarray):
    pass


class AlwaysEqual:
    def __eq__(self, other):
        return True


class FakeFloat(float):
    def __eq__(self, other):
        return True


@pytest.mark.parametrize("value, name", [
    (torch.zeros(2).as_subclass(SneakyTensor), "SneakyTensor"),
    (np.zeros(2).view(SneakyArray), "SneakyArray"),
    (AlwaysEqual(), "AlwaysEqual"),
    (FakeFloat(1.0), "FakeFloat"),
    (np.array([object()], dtype=object), "ndarray"),
])
def test_objects_that_could_fake_comparisons_arrive_as_inert_placeholders(value, name):
    got = roundtrip(value)
    assert isinstance(got, Opaque) and name in type(got).__qualname__ + type(got).remote_type
    assert got != 0 and not (got == got.__class__())        # plain object identity semantics


def test_a_dict_with_non_string_keys_is_not_sent():
    assert isinstance(roundtrip({1: 2}), Opaque)


def _body(header: dict, blobs: list[bytes]) -> bytes:
    h = json.dumps(header).encode()
    out = struct.pack(">I", len(h)) + h + struct.pack(">Q", len(blobs))
    for b in blobs:
        out += struct.pack(">Q", len(b)) + b
    return out


def test_a_pickled_object_array_is_refused():
    buf = io.BytesIO()
    np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ProtocolError):
        decode(_body({"v": {"t": "array", "kind": "numpy", "blob": 0}}, [buf.getvalue()]))


def test_an_array_claiming_more_data_than_it_carries_is_refused_before_allocation():
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (10**10,)})
    forged = buf.getvalue() + bytes(32)                   # 80 GB announced, 32 bytes given
    with pytest.raises(ProtocolError, match="does not match"):
        decode(_body({"v": {"t": "array", "kind": "numpy", "blob": 0}}, [forged]))


@pytest.mark.parametrize("header", [
    {"v": {"t": "eval", "v": "1+1"}},
    {"v": {"t": "int", "v": "12"}},
    {"v": {"t": "list", "items": {"a": 1}}},
    {"v": {"t": "array", "kind": "torch", "blob": 3}},
    {"x": 1},
])
def test_malformed_headers_are_protocol_errors(header):
    with pytest.raises(ProtocolError):
        decode(_body(header, []))


def test_size_and_depth_limits():
    with pytest.raises(ProtocolError):
        encode(torch.zeros(1000), WireLimits(max_bytes=1000))
    deep: list = []
    for _ in range(50):
        deep = [deep]
    with pytest.raises(ProtocolError):
        encode(deep)
    body = encode(list(range(50)))
    with pytest.raises(ProtocolError):
        decode(body, WireLimits(max_nodes=10))


def test_framing_over_a_pipe_with_a_deadline_and_an_announced_size_limit():
    r, w = os.pipe()
    try:
        protocol.send(w, encode({"x": [1, 2]}))
        assert decode(protocol.recv(r)) == {"x": [1, 2]}
        with pytest.raises(TimeoutError):
            protocol.recv(r, deadline=0.0)
        os.write(w, struct.pack(">Q", 10**12))
        with pytest.raises(ProtocolError, match="announced"):
            protocol.recv(r)
    finally:
        os.close(r)
        os.close(w)
