"""Tests for course_lib.measure.gates: an LSTM's gates and states recorded at every step."""
import pytest
import torch
from torch import nn

from course_lib.measure.gates import GateRecord, record_lstm_gates
from course_lib.models import ModelConfig, SequenceModel


def _model(kind, hidden=6, **kw):
    return SequenceModel(ModelConfig(kind=kind, input_size=2, hidden_size=hidden, **kw), seed=0)


@pytest.mark.parametrize("layer", [0, 1])
def test_recorded_gates_reproduce_nn_lstm(layer):
    """Do the recorded c_t, h_t of each layer equal what nn.LSTM computes (its h_n, c_n, output)?"""
    net = nn.LSTM(2, 5, num_layers=2)                   # time-major, as nn.LSTM defaults
    x = torch.randn(9, 3, 2)                            # (L, N, H_in)
    out, (h_n, c_n) = net(x)
    rec = record_lstm_gates(net, x, layer=layer)
    assert isinstance(rec, GateRecord) and rec.i.shape == (3, 9, 5)   # (N, L, H)
    torch.testing.assert_close(rec.h[:, -1], h_n[layer])
    torch.testing.assert_close(rec.c[:, -1], c_n[layer])
    if layer == 1:
        torch.testing.assert_close(rec.h, out.transpose(0, 1))
    # the recurrence, written out once more from the recorded gates
    c_prev = torch.zeros(3, 5)
    for t in range(9):
        c_t = rec.f[:, t] * c_prev + rec.i[:, t] * rec.g[:, t]
        torch.testing.assert_close(c_t, rec.c[:, t])
        torch.testing.assert_close(rec.o[:, t] * torch.tanh(c_t), rec.h[:, t])
        c_prev = c_t


def test_record_gates_of_a_sequence_model():
    model = _model("lstm")
    x = torch.randn(2, 7, 2)
    torch.testing.assert_close(record_lstm_gates(model, x).h, model.hidden_states(x))
    with pytest.raises(ValueError, match="needs an LSTM"):
        record_lstm_gates(_model("gru"), x)
