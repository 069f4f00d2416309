"""Tests for course_lib.measure.cost: parameter counts, step times, memory and autograd nodes."""
import pytest
import torch
from torch import nn

from course_lib.measure.cost import (
    StepCost, autograd_nodes, inference_step_time, n_parameters, step_time, training_cost, training_memory,
)
from course_lib.models import ModelConfig, SequenceModel


def _model(kind, hidden=6, **kw):
    return SequenceModel(ModelConfig(kind=kind, input_size=2, hidden_size=hidden, **kw), seed=0)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru", "transformer"])
def test_n_parameters_is_the_sum_of_numel(kind):
    model = _model(kind, hidden=8, n_heads=2)
    assert n_parameters(model) == sum(p.numel() for p in model.parameters())


def test_n_parameters_against_the_textbook_formula():
    """H(H_in + H + 2) per gate block: 1 block for the RNN, 3 for the GRU, 4 for the LSTM, plus the head."""
    H, H_in = 7, 3
    block = H * (H_in + H + 2)
    head = H + 1
    for kind, blocks in [("rnn", 1), ("gru", 3), ("lstm", 4)]:
        model = SequenceModel(ModelConfig(kind=kind, input_size=H_in, hidden_size=H))
        assert n_parameters(model) == blocks * block + head


class Scale(nn.Module):
    """exp(x * w) with five weights: small enough to count its memory by hand."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(5))

    def forward(self, x):
        return torch.exp(x * self.w)


def test_training_memory_counts_saved_tensors_by_hand():
    """exp(x * w) against a target: autograd keeps x (for dw), exp's output and the target: 3 x (3x5) floats."""
    use = training_memory(Scale(), torch.randn(3, 5), torch.randn(3, 5))
    assert use.activations == 3 * 15 * 4
    assert (use.parameters, use.gradients, use.optimizer) == (20, 20, 40)
    assert use.total == 180 + 80


def test_rnn_activation_memory_grows_linearly_with_length():
    model = _model("rnn", hidden=8)
    mem = [training_memory(model, torch.randn(4, L, 2), torch.randn(4, 1)).activations for L in (10, 20, 30)]
    assert mem[1] - mem[0] == mem[2] - mem[1] > 0


def test_timers_return_positive_seconds_and_refuse_unknown_clocks():
    model = _model("gru")
    x, y = torch.randn(2, 5, 2), torch.randn(2, 1)
    assert step_time(model, x, y, repeats=2) > 0
    assert inference_step_time(model, 4, repeats=2, clock="wall") > 0
    assert inference_step_time(_model("transformer", hidden=8, n_heads=2), 4, repeats=2) > 0
    with pytest.raises(ValueError, match="clock must be"):
        step_time(model, x, y, clock="gpu")


def _record_steps(model, monkeypatch):
    """Replace model.step by a wrapper that records how long a cache (or None) each call was given."""
    seen, step = [], model.step

    def recording_step(x_t, state=None):
        seen.append(0 if state is None else state.length)
        return step(x_t, state)

    monkeypatch.setattr(model, "step", recording_step)
    return seen


def test_kv_cached_inference_times_one_step_over_the_full_cache(monkeypatch):
    """With kv_cache=True, is the context fed step by step and then only steps over all of it timed?"""
    model = _model("transformer", hidden=8, n_heads=2)
    seen = _record_steps(model, monkeypatch)
    assert inference_step_time(model, 5, kv_cache=True, repeats=2, warmup=1) > 0
    assert seen == [0, 1, 2, 3, 4] + [5, 5, 5]          # 5 context steps, then warmup + 2 timed, cache of 5


def test_inference_without_cache_reruns_the_whole_prefix(monkeypatch):
    """With kv_cache=False, does every timed call run forward on all context_len + 1 inputs, and never step?"""
    model = _model("transformer", hidden=8, n_heads=2)
    seen = _record_steps(model, monkeypatch)
    lengths, forward = [], model.forward

    def recording_forward(x):
        lengths.append(x.shape[1])
        return forward(x)

    monkeypatch.setattr(model, "forward", recording_forward)
    inference_step_time(model, 5, repeats=2, warmup=1)
    assert seen == [] and lengths == [6, 6, 6]


def test_inference_step_time_refuses_a_cache_for_recurrent_models_and_bad_contexts():
    with pytest.raises(ValueError, match="kv_cache=True applies to a transformer"):
        inference_step_time(_model("lstm"), 4, kv_cache=True)
    with pytest.raises(ValueError, match="context_len must be a non-negative integer"):
        inference_step_time(_model("lstm"), -1)
    with pytest.raises(ValueError, match="exceeds this transformer's max_len=4"):
        inference_step_time(_model("transformer", hidden=8, n_heads=2, max_len=4), 4, kv_cache=True)


def test_step_cost_relative_to_divides_field_by_field():
    """An LSTM step of 0.4 s and 800 B against an RNN step of 0.1 s and 200 B is 4x in both."""

    ratio = StepCost(0.4, 800).relative_to(StepCost(0.1, 200))
    assert ratio == pytest.approx((4.0, 4.0)) and isinstance(ratio, StepCost)
    assert StepCost(0.1, 300).relative_to(StepCost(0.2, 200)) == pytest.approx((0.5, 1.5))
    with pytest.raises(ValueError, match="must be positive"):
        StepCost(1.0, 1).relative_to(StepCost(0.0, 1))


def test_training_cost_pairs_step_time_with_the_hand_counted_memory():
    """The Scale module holds 180 B of activations and 80 B of weights, gradients and Adam moments."""

    cost = training_cost(Scale(), torch.randn(3, 5), torch.randn(3, 5), repeats=2)
    assert cost.memory == 260 and cost.seconds >= 0


def test_autograd_nodes_counts_a_hand_built_graph():
    """(a * b).sum() with two leaves: one SumBackward0, one MulBackward0, two AccumulateGrad."""

    a = torch.randn(3, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    counts = autograd_nodes((a * b).sum())
    assert counts == {"SumBackward0": 1, "MulBackward0": 1, "AccumulateGrad": 2}
    shared = a * 2
    assert autograd_nodes(shared + shared)["MulBackward0"] == 1      # a node reached twice is counted once


def test_autograd_nodes_of_a_step_by_step_loop_grow_with_length():
    model = _model("rnn")
    short, _ = model.unrolled(torch.randn(2, 5, 2))
    long, _ = model.unrolled(torch.randn(2, 10, 2))
    assert autograd_nodes(long)["TanhBackward0"] == 10 and autograd_nodes(short)["TanhBackward0"] == 5
