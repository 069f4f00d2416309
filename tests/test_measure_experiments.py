"""Tests for course_lib.measure.experiments: solve runs, sweeps, clipping and small-data runs."""
import pytest
import torch

from course_lib.data import adding_problem
from course_lib.measure.experiments import (
    SMALL_DATA_SEED, SolveResult, clipping_runs, find_result, length_generalization, parallel_calls,
    small_data_run, solve, summarize,
)
from course_lib.models import ModelConfig, SequenceModel
from course_lib.train import Task, evaluate


def _model(kind, hidden=6, **kw):
    return SequenceModel(ModelConfig(kind=kind, input_size=2, hidden_size=hidden, **kw), seed=0)


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


def _result(kind, T, seed, loss, steps=100, cpu=1.0):
    return SolveResult(kind, T, seed, steps, cpu, cpu, loss, loss < 0.01)


def test_summarize_takes_medians_per_kind_and_length():
    results = [_result("lstm", 10, 0, 0.001, steps=100), _result("lstm", 10, 1, 0.003, steps=300),
               _result("lstm", 10, 2, 0.2, steps=1000), _result("rnn", 10, 0, 0.1)]
    table = summarize(results)
    assert list(table) == [("lstm", 10), ("rnn", 10)]
    s = table[("lstm", 10)]
    assert (s.runs, s.solved, s.loss, s.steps) == (3, 2, 0.003, 300)
    assert s.solve_rate == pytest.approx(2 / 3) and table[("rnn", 10)].solve_rate == 0.0


def test_find_result_picks_the_run_by_kind_length_and_seed():
    results = [_result("lstm", 10, 0, 0.1), _result("lstm", 10, 1, 0.2), _result("gru", 10, 0, 0.3)]
    assert find_result(results, "lstm", 10, seed=1).loss == 0.2
    assert find_result(results, "gru", 10).loss == 0.3
    with pytest.raises(ValueError, match="no run of kind='rnn', length=10, seed=0"):
        find_result(results, "rnn", 10)


def test_length_generalization_scores_each_length_on_held_out_data():
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

    runs = clipping_runs(clips=(None, 0.5), seeds=(0,), steps=3, hidden_size=4, batch_size=4, length=5)
    assert [(r.clip, r.seed, r.history.steps) for r in runs] == [(None, 0, 3), (0.5, 0, 3)]
    assert runs[0].history.loss[0] == runs[1].history.loss[0]
    assert runs[0].history.grad_norm[0] == runs[1].history.grad_norm[0]
    assert not any(r.diverged for r in runs)


def test_parallel_calls_give_the_results_of_one_process_in_order():
    """Two worker processes change the wall time only: each seeded run gives the same numbers, in order."""

    calls = [(solve, dict(kind=kind, length=5, seed=seed, hidden_size=4, max_steps=3, batch_size=4))
             for kind, seed in (("rnn", 0), ("gru", 1), ("lstm", 2))]
    here = parallel_calls(calls, workers=1)
    there = parallel_calls(calls, workers=2)
    assert [(r.kind, r.seed, r.steps, r.loss) for r in there] == [(r.kind, r.seed, r.steps, r.loss) for r in here]
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        parallel_calls(calls, workers=0)


def test_small_data_run_scores_the_training_set_and_fresh_data():
    """The training loss is the loss on the fixed training set; the held-out loss on fresh sequences."""
    run = small_data_run("lstm", n_train=64, length=5, steps=4, hidden_size=4, batch_size=16)
    assert (run.kind, run.n_train) == ("lstm", 64)
    again = small_data_run("lstm", n_train=64, length=5, steps=4, hidden_size=4, batch_size=16)
    assert run == again                                            # seeded: the same run twice
    x, y = adding_problem(64, 5, seed=SMALL_DATA_SEED)
    untrained = SequenceModel(ModelConfig(kind="lstm", input_size=2, hidden_size=4), seed=0)
    assert run.train_loss != evaluate(untrained, (x, y)).loss      # it trained on that very set
    assert run.gap == run.test_loss - run.train_loss
    with pytest.raises(ValueError, match="n_train must be an integer of at least batch_size=16"):
        small_data_run("rnn", n_train=8, batch_size=16)
