"""Does the reference attention match torch's, with and without the causal mask?"""
import pytest
import torch
import torch.nn.functional as F

from course_lib.reference import causal_mask, scaled_dot_product_attention, self_attention


@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 4), (2, 7, 8), (2, 3, 6, 16)])
@pytest.mark.parametrize("causal", [False, True])
def test_matches_torch(shape, causal):
    torch.manual_seed(len(shape))
    q, k, v = (torch.randn(*shape, dtype=torch.float64) for _ in range(3))
    ours = scaled_dot_product_attention(q, k, v, causal=causal)
    theirs = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert (ours - theirs).abs().max().item() < 1e-12


def test_causal_output_ignores_the_future():
    """Changing the last position's keys and values leaves every earlier output unchanged."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(6, 4) for _ in range(3))
    before = scaled_dot_product_attention(q, k, v, causal=True)
    k2, v2 = k.clone(), v.clone()
    k2[-1], v2[-1] = 100.0, -100.0
    after = scaled_dot_product_attention(q, k2, v2, causal=True)
    assert torch.equal(before[:-1], after[:-1])
    assert not torch.allclose(before[-1], after[-1])


def test_causal_mask_is_lower_triangular():
    assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]


def test_self_attention_projects_then_attends():
    torch.manual_seed(1)
    x, w_q, w_k, w_v = torch.randn(5, 8), torch.randn(8, 4), torch.randn(8, 4), torch.randn(8, 3)
    expected = F.scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v, is_causal=True)
    assert torch.allclose(self_attention(x, w_q, w_k, w_v, causal=True), expected, atol=1e-6)
