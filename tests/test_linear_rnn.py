"""Tests of course_lib.linear_rnn: linear attention as an RNN, and minGRU's log-space scan."""
from __future__ import annotations

import pytest
import torch

from course_lib.linear_rnn import (
    MinGRU,
    MinGRURegressor,
    linear_attention,
    linear_attention_recurrent,
    linear_recurrence_loop,
    log_space_scan,
)


def test_linear_attention_parallel_and_recurrent_forms_agree():
    """Is causal linear attention, computed with an L x L matrix, the RNN with a matrix state step by step?"""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 9, 4, generator=g) for _ in range(3))
    assert torch.allclose(linear_attention(q, k, v), linear_attention_recurrent(q, k, v), atol=1e-5)


def test_linear_attention_is_causal():
    """Does changing position 5 leave the outputs at positions 0-4 unchanged?"""
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 8, 3, generator=g) for _ in range(3))
    before = linear_attention(q, k, v)
    v2 = v.clone()
    v2[0, 5] += 1.0
    after = linear_attention(q, k, v2)
    assert torch.equal(before[0, :5], after[0, :5])
    assert not torch.allclose(before[0, 5], after[0, 5])


def test_log_space_scan_matches_the_loop():
    """For positive coefficients, does the log-space scan give every h_t of the sequential recurrence?"""
    g = torch.Generator().manual_seed(2)
    a = torch.rand(3, 40, 5, generator=g) * 0.98 + 0.01
    b = torch.rand(3, 40, 5, generator=g) + 0.01
    h0 = torch.rand(3, 5, generator=g) + 0.1
    scanned = log_space_scan(a.log(), b.log(), h0.log())
    assert torch.allclose(scanned, linear_recurrence_loop(a, b, h0), rtol=1e-4, atol=1e-6)


def test_log_space_scan_survives_where_the_running_product_underflows():
    """Over 2,000 steps of a_t = 0.5, A_t underflows float32; is the scan still right and finite?"""
    L = 2000
    a = torch.full((1, L, 1), 0.5)
    b = torch.full((1, L, 1), 0.5)
    assert torch.cumprod(a, dim=1)[0, -1, 0] == 0                # the naive closed form breaks
    h = log_space_scan(a.log(), b.log(), torch.ones(1, 1).log())
    assert torch.isfinite(h).all()
    assert torch.allclose(h, linear_recurrence_loop(a, b, torch.ones(1, 1)), rtol=1e-4)


@pytest.mark.parametrize("h0", [None, "given"])
def test_mingru_scan_and_loop_agree_in_values_and_gradients(h0):
    """Do minGRU's parallel and sequential forms give the same states and the same weight gradients?"""
    torch.manual_seed(3)
    layer = MinGRU(4, 6)
    x = torch.randn(2, 30, 4) * 3                                # large inputs: both branches of g
    start = None if h0 is None else torch.rand(2, 6) + 0.1
    fast, slow = layer(x, start), layer.forward_loop(x, start)
    assert torch.allclose(fast, slow, rtol=1e-4, atol=1e-6)
    g_fast = torch.autograd.grad(fast.sum(), layer.linear.weight)[0]
    g_slow = torch.autograd.grad(slow.sum(), layer.linear.weight)[0]
    assert torch.allclose(g_fast, g_slow, rtol=1e-3, atol=1e-5)


def test_mingru_rejects_a_state_that_has_no_logarithm():
    """Does a non-positive h0 raise a sentence saying the state must be positive?"""
    with pytest.raises(ValueError, match="positive"):
        MinGRU(2, 3)(torch.randn(1, 4, 2), torch.zeros(1, 3))


def test_regressor_reads_the_last_state_and_is_seeded():
    """Does the regressor map (N, L, 2) to (N, 1), reproducibly for a seed?"""
    x = torch.randn(5, 12, 2)
    a, b = MinGRURegressor(2, 8, seed=0), MinGRURegressor(2, 8, seed=0)
    assert a(x).shape == (5, 1)
    assert torch.equal(a(x), b(x))
