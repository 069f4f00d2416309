"""Tests of course_lib.checkers.clipping: clipping by global norm, graded against torch."""
import pytest
import torch

import wrong_impls as W
from course_lib import reference
from course_lib.checkers import check_clip_grad_norm


def clip_student(grads, max_norm):
    """A student's version returning only the list."""
    total = torch.sqrt(sum((g ** 2).sum() for g in grads))
    scale = min(1.0, max_norm / (float(total) + 1e-6))
    return [g * scale for g in grads]


def clip_with_torch(grads, max_norm):
    """torch's own clip_grad_norm_ on fresh parameters, returning (list, norm as a 0-d tensor)."""
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return [p.grad for p in params], total


@pytest.mark.parametrize("fn", [reference.clip_by_global_norm, clip_student, clip_with_torch])
def test_correct_clipping_passes(fn, capsys):
    """Do the reference (list, norm), a student's list-only version and torch's own pass?"""
    assert check_clip_grad_norm(fn) is None
    assert capsys.readouterr().out == ("clip_grad_norm: correct on 4 random cases (3 gradient tensors; "
                                       "global norm above and below max_norm, and 0).\n")
    check_clip_grad_norm(fn, seed=4)


@pytest.mark.parametrize("fn,phrase", W.CLIP_MISTAKES,
                         ids=lambda v: getattr(v, "__name__", None) if callable(v) else None)
def test_named_clipping_mistake(fn, phrase):
    """Is each deliberately wrong clipping named by its mistake?"""
    msg = W.failure_message(check_clip_grad_norm, fn)
    assert msg.startswith("clip_grad_norm: ") and phrase in msg, msg


def test_in_place_is_caught():
    """Is clipping the caller's tensors in place refused, naming the tensor?"""
    msg = W.failure_message(check_clip_grad_norm, W.clip_in_place)
    assert "modified its argument grads[0] in place" in msg


def test_replacing_list_items_is_caught():
    """Is assigning into the caller's list refused?"""
    assert "changed the list grads it was given" in W.failure_message(check_clip_grad_norm, W.clip_replaces_list_items)


def test_wrong_returned_norm():
    """Is a returned total norm checked (here: the norm after clipping instead of before)?"""
    msg = W.failure_message(check_clip_grad_norm, W.clip_returns_norm_after)
    assert "the total norm you returned is 1;" in msg and "before clipping" in msg


def test_wrong_number_of_tensors():
    """Is a list of the wrong length refused with one sentence?"""
    msg = W.failure_message(check_clip_grad_norm, lambda grads, max_norm: grads[:2])
    assert "returned 2 tensors for 3 gradients" in msg

