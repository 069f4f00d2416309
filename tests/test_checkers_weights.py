"""course_lib.checkers.weights: is a returned state dict refused, with one sentence, unless it is exactly the model's?"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch

from course_lib.checkers import CheckFailed
from course_lib.checkers.weights import clean_state_dict, load_trained
from course_lib.language_model import char_model


def _model():
    return char_model("gru", 7, 5, embed_size=4, seed=0)


def _good() -> dict:
    return {k: v.detach().clone() for k, v in char_model("gru", 7, 5, embed_size=4, seed=1).state_dict().items()}


def _refused(result, *pieces):
    with pytest.raises(CheckFailed) as info:
        clean_state_dict(result, _model(), "train")
    message = str(info.value)
    assert message.startswith("train: ") and message.count("\n") == 0
    for piece in pieces:
        assert piece in message, message
    return message


def test_a_right_state_dict_is_copied_into_fresh_tensors():
    good = _good()
    clean = clean_state_dict(good, _model(), "train")
    assert list(clean) == list(_model().state_dict())
    good["head.bias"].add_(1.0)                               # the student's tensors are not kept
    assert not torch.equal(clean["head.bias"], good["head.bias"])
    model = load_trained(_good(), _model, "train")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in _good().items())


def test_parameters_and_arrays_are_accepted():
    params = dict(char_model("gru", 7, 5, embed_size=4, seed=1).named_parameters())
    clean_state_dict(params, _model(), "train")
    clean_state_dict({k: v.numpy() for k, v in _good().items()}, _model(), "train")


def test_not_a_plain_dict():
    _refused(OrderedDict(_good()), "collections.OrderedDict", "plain dict")
    _refused(None, "returned None")
    _refused(list(_good().values()), "returned a list")


def test_wrong_keys():
    good = _good()
    good["core.weight_hh"] = good.pop("core.weight_hh_l0")
    _refused(good, "missing core.weight_hh_l0", "unexpected 'core.weight_hh'")
    _refused({**_good(), **{f"x{i}": torch.zeros(1) for i in range(100)}}, "entries")
    _refused({1: torch.zeros(1), **_good()}, "key of type int")


def test_wrong_shape_dtype_and_values():
    good = _good()
    good["core.weight_hh_l0"] = torch.zeros(15, 6)
    _refused(good, "core.weight_hh_l0 has shape (15, 6)", "(15, 5)")
    _refused({**_good(), "head.weight": _good()["head.weight"].double()}, "head.weight is float64", "float32")
    bad = _good()
    bad["embed.weight"][0, 0] = float("nan")
    _refused(bad, "embed.weight holds 1 NaN or infinite values")
    _refused({**_good(), "head.bias": [0.0] * 7}, "head.bias is a list")


def test_a_huge_tensor_is_refused_by_its_shape():
    huge = torch.empty(1).expand(10**6, 10**4)                # 10^10 numbers, no memory behind them
    _refused({**_good(), "head.weight": huge}, "head.weight has shape (1000000, 10000)")


def test_subclasses_are_refused():
    class Sneaky(torch.Tensor):
        pass
    _refused({**_good(), "head.bias": _good()["head.bias"].as_subclass(Sneaky)}, "Sneaky")
