"""Are the parameter counts exact for every kind, size and depth?"""
import pytest
from torch import nn

from course_lib.reference import count_parameters

MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@pytest.mark.parametrize("kind", sorted(MODULES))
@pytest.mark.parametrize("H_in,H,layers,bias", [(1, 1, 1, True), (3, 5, 1, True), (10, 64, 3, True), (4, 7, 2, False)])
def test_count_matches_torch(kind, H_in, H, layers, bias):
    net = MODULES[kind](H_in, H, num_layers=layers, bias=bias)
    assert count_parameters(kind, H_in, H, layers, bias) == sum(p.numel() for p in net.parameters())


def test_lstm_is_four_rnns_and_gru_three():
    assert count_parameters("lstm", 10, 20) == 4 * count_parameters("rnn", 10, 20)
    assert count_parameters("gru", 10, 20) == 3 * count_parameters("rnn", 10, 20)


def test_bad_kind_and_sizes():
    with pytest.raises(ValueError, match="kind must be one of"):
        count_parameters("transformer", 1, 1)
    with pytest.raises(ValueError, match="at least 1"):
        count_parameters("rnn", 0, 4)
