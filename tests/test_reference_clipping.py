"""Does clipping by global norm rescale exactly as torch.nn.utils.clip_grad_norm_ does?"""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from course_lib.reference import clip_by_global_norm, global_norm


@given(seed=st.integers(0, 1000), max_norm=st.floats(0.01, 100.0), scale=st.floats(0.01, 100.0))
def test_matches_torch_and_keeps_direction(seed, max_norm, scale):
    g = torch.Generator().manual_seed(seed)
    grads = [scale * torch.randn(3, 4, generator=g), scale * torch.randn(5, generator=g)]
    params = [torch.zeros_like(t, requires_grad=True) for t in grads]
    for p, t in zip(params, grads):
        p.grad = t.clone()
    torch_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    clipped, norm = clip_by_global_norm(grads, max_norm)
    assert norm == pytest.approx(float(torch_norm), rel=1e-5)
    for c, p in zip(clipped, params):
        assert torch.allclose(c, p.grad, rtol=1e-5, atol=1e-7)
    assert global_norm(clipped) <= max_norm * (1 + 1e-5)


def test_inputs_are_not_modified_and_small_gradients_pass_unchanged():
    grads = [torch.tensor([3.0, 4.0])]  # norm 5
    clipped, norm = clip_by_global_norm(grads, 10.0)
    assert norm == pytest.approx(5.0)
    assert torch.equal(clipped[0], grads[0])
    clipped, _ = clip_by_global_norm(grads, 1.0)
    assert torch.allclose(clipped[0], torch.tensor([0.6, 0.8]), atol=1e-6)
    assert torch.equal(grads[0], torch.tensor([3.0, 4.0]))


def test_rejects_non_positive_bound():
    with pytest.raises(ValueError, match="max_norm must be positive"):
        clip_by_global_norm([torch.ones(2)], 0.0)
