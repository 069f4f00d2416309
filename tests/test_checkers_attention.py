"""Tests of course_lib.checkers.attention: scaled dot-product attention, graded against torch."""
import math

import pytest
import torch
import torch.nn.functional as F

import wrong_impls as W
from course_lib import reference
from course_lib.checkers import check_attention


def attention_student(q, k, v, causal=False):
    """A student's version: transpose(1, 2), a -1e9 mask built with tril, softmax over the last axis."""
    d_k = q.size(-1)
    scores = torch.bmm(q, k.transpose(1, 2)) / math.sqrt(d_k)
    if causal:
        keep = torch.tril(torch.ones(q.size(1), k.size(1)))
        scores = scores.masked_fill(keep == 0, -1e9)
    return torch.bmm(F.softmax(scores, dim=-1), v)


def attention_torch(q, k, v, causal=False):
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


@pytest.mark.parametrize("fn", [reference.scaled_dot_product_attention, attention_student, attention_torch])
def test_correct_attention_passes(fn, capsys):
    """Do the reference, a student's version and torch's own pass with one line?"""
    assert check_attention(fn) is None
    assert capsys.readouterr().out == ("attention: correct on 4 random cases (batch=2, length=5, d_k=8, d_v=6; "
                                       "causal and not, with 7 keys in the non-causal case; and batch=1 with "
                                       "scores about 150).\n")


def test_other_seeds_and_shapes():
    """Do other seeds and sizes pass?"""
    check_attention(attention_student, seed=9, batch=1, length=3, d_k=4, d_v=2)
    check_attention(attention_student, seed=2, batch=3, length=7, d_k=16, d_v=16)


@pytest.mark.parametrize("fn,phrase", W.ATTENTION_MISTAKES,
                         ids=lambda v: getattr(v, "__name__", None) if callable(v) else None)
def test_named_attention_mistake(fn, phrase):
    """Is each deliberately wrong attention named by its mistake?"""
    msg = W.failure_message(check_attention, fn)
    assert msg.startswith("attention: ") and phrase in msg, msg


def test_future_is_named_for_a_missing_or_inverted_mask():
    """Do the messages for a missing or inverted causal mask say that the future is visible?"""
    for fn in (W.attention_ignores_causal, W.attention_mask_inverted):
        assert "future" in W.failure_message(check_attention, fn)


def test_mask_hiding_the_diagonal_gets_a_nan_message():
    """Is a mask that hides the diagonal (NaN rows) reported as non-finite, with the diagonal named?"""
    msg = W.failure_message(check_attention, W.attention_mask_hides_diagonal)
    assert "non-finite values" in msg and "diagonal" in msg


def test_no_causal_keyword():
    """Is a function without the `causal` keyword told how it is called?"""
    msg = W.failure_message(check_attention, lambda q, k, v, is_causal=False: q)
    assert ("your function takes (q, k, v, is_causal=False) but the exercise calls it as "
            "attention(q, k, v, causal=...)") in msg
