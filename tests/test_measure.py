"""Tests for course_lib.measure: gradients through time, gate recordings, cost and memory counts."""
import pytest
import torch
from torch import nn

from course_lib.measure import (
    GateRecord, inference_step_time, jacobian_norms_by_lag, n_parameters, record_lstm_gates,
    grad_norms_by_lag, solve, step_time, training_memory,
)
from course_lib.models import ModelConfig, SequenceModel
from course_lib.train import Task, loss_fn


def _model(kind, hidden=6, **kw):
    return SequenceModel(ModelConfig(kind=kind, input_size=2, hidden_size=hidden, **kw), seed=0)


# ------------------------------------------------------------------------------------------ gates
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


# ----------------------------------------------------------------------------- gradients in time
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_grad_norms_by_lag_agree_with_a_split_sequence(kind):
    """dL/dh_t measured another way: run the torch layer up to t, make h_t (and c_t) a leaf,
    run the rest of the sequence from it, and ask autograd for dL/dh_t."""
    model = _model(kind)
    x, y = torch.randn(3, 8, 2), torch.randn(3, 1)
    norms = grad_norms_by_lag(model, x, y)
    assert norms.shape == (8,)
    for t in [0, 3, 7]:                                  # 0-based step; lag = 7 - t
        _, state = model.core(x[:, :t + 1])
        if kind == "lstm":
            h_t = state[0].detach().requires_grad_()
            rest_state = (h_t, state[1].detach())
        else:
            h_t = state.detach().requires_grad_()
            rest_state = h_t
        if t < 7:
            out, _ = model.core(x[:, t + 1:], rest_state)
            last = out[:, -1]
        else:
            last = h_t[0]
        loss = loss_fn(model.head(last), y)
        (grad,) = torch.autograd.grad(loss, h_t)
        assert norms[7 - t].item() == pytest.approx(grad.norm().item(), rel=1e-4)


def test_rnn_jacobian_norms_equal_the_product_of_step_jacobians():
    """For a tanh RNN, ds_k/ds_{k-1} = diag(1 - h_k^2) W_hh: multiply them by hand and compare."""
    model = _model("rnn", hidden=5)
    x = torch.randn(3, 6, 2)
    norms = jacobian_norms_by_lag(model, x)
    with torch.no_grad():
        hs = model.hidden_states(x)                      # (N, L, H)
        W = model.core.weight_hh_l0
        product = torch.eye(5).expand(3, 5, 5)
        expected = [1.0]
        for s in range(5, 0, -1):                        # steps L-1 .. 1 (0-based), walking back in time
            product = product @ (torch.diag_embed(1 - hs[:, s] ** 2) @ W)
            expected.append(torch.linalg.matrix_norm(product, ord=2).mean().item())
    assert norms.tolist() == pytest.approx(expected, rel=1e-4)


def test_lstm_jacobian_norm_matches_autograd_functional_on_the_torch_layer():
    """LSTM state s = (h, c): the Jacobian of s_L with respect to s_t, by torch.autograd.functional."""
    model = _model("lstm", hidden=4)
    x = torch.randn(1, 5, 2)
    norms = jacobian_norms_by_lag(model, x)
    t = 1                                                # lag 3
    _, (h_t, c_t) = model.core(x[:, :t + 1])

    def rest(s):
        _, (h, c) = model.core(x[:, t + 1:], (s[:4].view(1, 1, 4), s[4:].view(1, 1, 4)))
        return torch.cat([h.view(-1), c.view(-1)])

    J = torch.autograd.functional.jacobian(rest, torch.cat([h_t.view(-1), c_t.view(-1)]).detach())
    assert norms[3].item() == pytest.approx(torch.linalg.matrix_norm(J, ord=2).item(), rel=1e-4)
    assert norms[0].item() == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------ cost
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
    from course_lib.measure import StepCost

    ratio = StepCost(0.4, 800).relative_to(StepCost(0.1, 200))
    assert ratio == pytest.approx((4.0, 4.0)) and isinstance(ratio, StepCost)
    assert StepCost(0.1, 300).relative_to(StepCost(0.2, 200)) == pytest.approx((0.5, 1.5))
    with pytest.raises(ValueError, match="must be positive"):
        StepCost(1.0, 1).relative_to(StepCost(0.0, 1))


def test_training_cost_pairs_step_time_with_the_hand_counted_memory():
    """The Scale module holds 180 B of activations and 80 B of weights, gradients and Adam moments."""
    from course_lib.measure import training_cost

    cost = training_cost(Scale(), torch.randn(3, 5), torch.randn(3, 5), repeats=2)
    assert cost.memory == 260 and cost.seconds >= 0


# ---------------------------------------------------------------------------------- reading numbers
def test_share_at_lag_divides_by_the_signal_at_lag_zero():
    from course_lib.measure import share_at_lag

    assert share_at_lag([2.0, 1.0, 0.02], 1) == pytest.approx(0.5)
    assert share_at_lag(torch.tensor([2.0, 1.0, 0.02]), 2) == pytest.approx(0.01)
    assert share_at_lag([3.0], 0) == 1.0
    with pytest.raises(ValueError, match=r"lag must be an integer in 0\.\.2"):
        share_at_lag([2.0, 1.0, 0.02], 3)
    with pytest.raises(ValueError, match="no signal at lag 0"):
        share_at_lag([0.0, 1.0], 1)


def test_format_span_writes_a_range_or_one_ratio():
    from course_lib.measure import format_span

    assert format_span([0.42, 0.47]) == "0.4-0.5x"
    assert format_span([3.96, 4.04]) == "4.0x"               # both ends round to the same digits
    assert format_span([0.75, 0.5, 0.6], digits=2) == "0.50-0.75x"
    with pytest.raises(ValueError, match="at least one ratio"):
        format_span([])


# ---------------------------------------------------------------------------------------- solve
def test_solve_stops_at_the_step_budget_and_judges_on_held_out_data():
    def easy(length):
        def sample(n, seed):
            g = torch.Generator().manual_seed(seed)
            x = torch.rand(n, length, 2, generator=g)
            return x, x[:, -1:, 0]
        return Task(f"last value T={length}", sample)

    result = solve("rnn", 4, task=easy, hidden_size=4, max_steps=3, target=1e-9, batch_size=4)
    assert (result.kind, result.length, result.steps, result.solved) == ("rnn", 4, 3, False)
    assert result.loss > 1e-9


def test_autograd_nodes_counts_a_hand_built_graph():
    """(a * b).sum() with two leaves: one SumBackward0, one MulBackward0, two AccumulateGrad."""
    from course_lib.measure import autograd_nodes

    a = torch.randn(3, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    counts = autograd_nodes((a * b).sum())
    assert counts == {"SumBackward0": 1, "MulBackward0": 1, "AccumulateGrad": 2}
    shared = a * 2
    assert autograd_nodes(shared + shared)["MulBackward0"] == 1      # a node reached twice is counted once


def test_autograd_nodes_of_a_step_by_step_loop_grow_with_length():
    from course_lib.measure import autograd_nodes

    model = _model("rnn")
    short, _ = model.unrolled(torch.randn(2, 5, 2))
    long, _ = model.unrolled(torch.randn(2, 10, 2))
    assert autograd_nodes(long)["TanhBackward0"] == 10 and autograd_nodes(short)["TanhBackward0"] == 5


def _result(kind, T, seed, loss, steps=100, cpu=1.0):
    from course_lib.measure import SolveResult
    return SolveResult(kind, T, seed, steps, cpu, cpu, loss, loss < 0.01)


def test_summarize_takes_medians_per_kind_and_length():
    from course_lib.measure import summarize

    results = [_result("lstm", 10, 0, 0.001, steps=100), _result("lstm", 10, 1, 0.003, steps=300),
               _result("lstm", 10, 2, 0.2, steps=1000), _result("rnn", 10, 0, 0.1)]
    table = summarize(results)
    assert list(table) == [("lstm", 10), ("rnn", 10)]
    s = table[("lstm", 10)]
    assert (s.runs, s.solved, s.loss, s.steps) == (3, 2, 0.003, 300)
    assert s.solve_rate == pytest.approx(2 / 3) and table[("rnn", 10)].solve_rate == 0.0


def test_find_result_picks_the_run_by_kind_length_and_seed():
    from course_lib.measure import find_result

    results = [_result("lstm", 10, 0, 0.1), _result("lstm", 10, 1, 0.2), _result("gru", 10, 0, 0.3)]
    assert find_result(results, "lstm", 10, seed=1).loss == 0.2
    assert find_result(results, "gru", 10).loss == 0.3
    with pytest.raises(ValueError, match="no run of kind='rnn', length=10, seed=0"):
        find_result(results, "rnn", 10)


def test_format_table_pads_columns_and_checks_row_length():
    from course_lib.measure import format_table

    text = format_table([("rnn", 10, 0.5), ("lstm", 100, 0.25)], ["kind", "T", "mse"])
    assert text.splitlines() == ["kind    T   mse", "----  ---  ----", "rnn    10   0.5", "lstm  100  0.25"]
    with pytest.raises(ValueError, match="every row needs 3 cells"):
        format_table([("rnn", 10)], ["kind", "T", "mse"])


def test_length_generalization_scores_each_length_on_held_out_data():
    from course_lib.measure import length_generalization
    from course_lib.train import evaluate

    def last_value(length):
        def sample(n, seed):
            x = torch.rand(n, length, 2, generator=torch.Generator().manual_seed(seed))
            return x, x[:, -1:, 0]
        return Task(f"last T={length}", sample)

    model = _model("gru")
    losses = length_generalization(model, [3, 6], task=last_value, n=16)
    assert losses == [evaluate(model, last_value(T), n=16).loss for T in (3, 6)]


def test_clipping_runs_pair_clipped_and_unclipped_runs_from_the_same_start():
    """Same seed: same initial weights and first batch, so the first loss agrees with and without clipping."""
    from course_lib.measure import clipping_runs

    runs = clipping_runs(clips=(None, 0.5), seeds=(0,), steps=3, hidden_size=4, batch_size=4, length=5)
    assert [(r.clip, r.seed, r.history.steps) for r in runs] == [(None, 0, 3), (0.5, 0, 3)]
    assert runs[0].history.loss[0] == runs[1].history.loss[0]
    assert runs[0].history.grad_norm[0] == runs[1].history.grad_norm[0]
    assert not any(r.diverged for r in runs)


def test_parallel_calls_give_the_results_of_one_process_in_order():
    """Two worker processes change the wall time only: each seeded run gives the same numbers, in order."""
    from course_lib.measure import parallel_calls, solve

    calls = [(solve, dict(kind=kind, length=5, seed=seed, hidden_size=4, max_steps=3, batch_size=4))
             for kind, seed in (("rnn", 0), ("gru", 1), ("lstm", 2))]
    here = parallel_calls(calls, workers=1)
    there = parallel_calls(calls, workers=2)
    assert [(r.kind, r.seed, r.steps, r.loss) for r in there] == [(r.kind, r.seed, r.steps, r.loss) for r in here]
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        parallel_calls(calls, workers=0)


def test_small_data_run_scores_the_training_set_and_fresh_data():
    """The training loss is the loss on the fixed training set; the held-out loss on fresh sequences."""
    from course_lib.data import adding_problem
    from course_lib.measure import _SMALL_DATA_SEED, small_data_run
    from course_lib.train import evaluate

    run = small_data_run("lstm", n_train=64, length=5, steps=4, hidden_size=4, batch_size=16)
    assert (run.kind, run.n_train) == ("lstm", 64)
    again = small_data_run("lstm", n_train=64, length=5, steps=4, hidden_size=4, batch_size=16)
    assert run == again                                            # seeded: the same run twice
    x, y = adding_problem(64, 5, seed=_SMALL_DATA_SEED)
    untrained = SequenceModel(ModelConfig(kind="lstm", input_size=2, hidden_size=4), seed=0)
    assert run.train_loss != evaluate(untrained, (x, y)).loss      # it trained on that very set
    assert run.gap == run.test_loss - run.train_loss
    with pytest.raises(ValueError, match="n_train must be an integer of at least batch_size=16"):
        small_data_run("rnn", n_train=8, batch_size=16)
