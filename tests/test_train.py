"""Tests for course_lib.train: the seeded training loop, clipping, early stopping and evaluation."""
import copy
import math

import pytest
import torch
from torch import nn

from course_lib.models import ModelConfig, SequenceModel
from course_lib.train import History, Task, evaluate, loss_fn, train


def _toy_sample(n, seed):
    """A tiny regression with its own seeded generator: y = sum of channel 0 of the first two steps."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 6, 2, generator=g)
    return x, x[:, :2, 0].sum(dim=1, keepdim=True)


TOY = Task("toy", _toy_sample)


def _model(kind="lstm", seed=0, **kw):
    return SequenceModel(ModelConfig(kind=kind, input_size=2, hidden_size=8, **kw), seed=seed)


def test_same_seed_same_losses_bit_for_bit():
    """Do two runs with the same seeds give exactly the same losses and gradient norms?"""
    runs = [train(_model(), TOY, steps=15, seed=3, batch_size=8, clip=1.0, progress=False) for _ in range(2)]
    assert runs[0].loss == runs[1].loss
    assert runs[0].grad_norm == runs[1].grad_norm
    other = train(_model(), TOY, steps=15, seed=4, batch_size=8, clip=1.0, progress=False)
    assert other.loss != runs[0].loss


def test_training_does_not_disturb_the_global_random_stream():
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    train(_model(), TOY, steps=2, seed=0, batch_size=4, progress=False)
    assert torch.equal(torch.rand(2), expected)


@pytest.mark.parametrize("clip", [0.05, 1e6])
def test_clipping_bounds_the_step_and_records_the_unclipped_norm(clip):
    """With plain SGD at lr=1 the update *is* the clipped gradient: is its norm min(||g||, clip)?

    The gradient is computed independently with torch.autograd.grad on a copy of the model.
    """
    model = _model("rnn")
    x, y = _toy_sample(16, 0)
    twin = copy.deepcopy(model)
    grads = torch.autograd.grad(loss_fn(twin(x), y), list(twin.parameters()))
    expected_norm = math.sqrt(sum(float((g ** 2).sum()) for g in grads))

    before = [p.detach().clone() for p in model.parameters()]
    history = train(model, [(x, y)], steps=1, lr=1.0, clip=clip, optimizer="sgd", progress=False)
    update = [b - p.detach() for b, p in zip(before, model.parameters())]
    update_norm = math.sqrt(sum(float((u ** 2).sum()) for u in update))

    assert history.grad_norm[0] == pytest.approx(expected_norm, rel=1e-5)
    assert update_norm == pytest.approx(min(expected_norm, clip), rel=1e-4)
    if clip < expected_norm:   # the direction is kept: the update is a positive multiple of the gradient
        for u, g in zip(update, grads):
            torch.testing.assert_close(u, g * (clip / expected_norm), rtol=1e-4, atol=1e-7)


def test_early_stop_at_target_loss():
    """Does training stop once the mean of the last `patience` losses is below the target?"""
    history = train(_model(), TOY, steps=500, seed=0, batch_size=8, target_loss=1e3, patience=5, progress=False)
    assert history.stopped_early and history.steps == 5
    full = train(_model(), TOY, steps=7, seed=0, batch_size=8, target_loss=1e-12, progress=False)
    assert not full.stopped_early and full.steps == 7


def test_history_records_one_entry_per_step_and_increasing_time():
    history = train(_model(), TOY, steps=6, seed=0, batch_size=4, progress=False)
    assert len(history.loss) == len(history.grad_norm) == len(history.time) == history.steps == 6
    assert all(b >= a for a, b in zip(history.time, history.time[1:]))
    assert history.seconds == history.time[-1]


def test_smoothed_is_a_running_mean_over_the_window():
    h = History(loss=[4.0, 2.0, 0.0, 6.0])
    assert h.smoothed(2) == [4.0, 3.0, 1.0, 3.0]


def test_an_iterable_of_batches_with_class_targets_trains_with_cross_entropy():
    """A character-model style stream: (N, L) ids in, (N, L) ids as targets, per-step logits out."""
    model = SequenceModel(ModelConfig(kind="gru", vocab_size=5, input_size=3, hidden_size=8,
                                      output_size=5, readout="every"), seed=0)
    ids = torch.randint(0, 5, (4, 8), generator=torch.Generator().manual_seed(0))
    batches = [(ids[:, :-1], ids[:, 1:])] * 3
    history = train(model, batches, steps=10, progress=False)
    assert history.steps == 3           # the iterable ran out before the step budget
    logits = model(ids[:, :-1])
    expected = nn.functional.cross_entropy(logits.reshape(-1, 5), ids[:, 1:].reshape(-1)).item()
    assert evaluate(model, (ids[:, :-1], ids[:, 1:])).loss == pytest.approx(expected, rel=1e-6)


def test_evaluate_reports_accuracy_for_class_targets():
    """A fixed 'model' whose answers are known: 3 of 4 right."""
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [2.0, 0.0]])
    target = torch.tensor([0, 1, 0, 1])
    fixed = nn.Module()
    fixed.forward = lambda x: logits
    result = evaluate(fixed, (torch.zeros(4, 1), target))
    assert result.accuracy == pytest.approx(0.75)
    assert result.loss == pytest.approx((3 * math.log(1 + math.exp(-2)) + math.log(1 + math.exp(2))) / 4, rel=1e-6)


def test_evaluate_on_a_task_uses_held_out_seeds():
    model = _model()
    first = evaluate(model, TOY, n=32)
    assert first.accuracy is None
    assert evaluate(model, TOY, n=32).loss == first.loss
    assert evaluate(model, TOY, n=32, seed=1).loss != first.loss


def test_progress_bar_goes_to_stderr_only_when_asked(capsys):
    train(_model(), TOY, steps=3, batch_size=4, progress=True)
    err = capsys.readouterr().err
    assert "3/3" in err and "loss" in err
    train(_model(), TOY, steps=3, batch_size=4, progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("kwargs, message", [
    (dict(steps=0), "steps must be a positive integer"),
    (dict(steps=3, lr=0.0), "lr must be positive"),
    (dict(steps=3, clip=-1.0), "clip must be None or a positive number"),
    (dict(steps=3, optimizer="rmsprop"), "optimizer must be 'adam' or 'sgd'"),
])
def test_bad_arguments_say_what_was_expected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train(_model(), TOY, progress=False, **kwargs)


def test_batches_of_the_wrong_type_are_refused():
    with pytest.raises(TypeError, match="Task or an iterable"):
        train(_model(), 42, steps=1, progress=False)


def test_loss_fn_names_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        loss_fn(torch.zeros(4, 1), torch.zeros(4))
    with pytest.raises(ValueError, match=r"logits \(\.\.\., C\)"):
        loss_fn(torch.zeros(4, 3, 5), torch.zeros(4, 2, dtype=torch.long))


@pytest.mark.slow
def test_a_short_run_on_the_adding_problem_lowers_the_loss():
    """A GRU on the adding problem at T=10: held-out MSE well below the chance level 1/6 after a few seconds."""
    from course_lib.data import ADDING_BASELINE_MSE
    from course_lib.train import adding_task

    task = adding_task(10)
    model = SequenceModel(ModelConfig(kind="gru", input_size=2, hidden_size=32), seed=0)
    before = evaluate(model, task).loss
    history = train(model, task, steps=300, lr=1e-2, clip=1.0, seed=0, batch_size=32, progress=False)
    after = evaluate(model, task).loss
    assert before > 0.5 * ADDING_BASELINE_MSE
    assert after < 0.2 * ADDING_BASELINE_MSE
    assert history.smoothed(20)[-1] < history.smoothed(20)[19]
