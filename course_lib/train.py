"""A seeded training loop: Adam (or SGD), optional clipping by global norm, early stopping.

::

    task = adding_task(length=50)                     # fresh batches drawn from course_lib.data
    model = SequenceModel(ModelConfig(kind="lstm", input_size=2), seed=0)
    history = train(model, task, steps=2000, lr=1e-2, clip=1.0, seed=0, target_loss=0.01)
    evaluate(model, task).loss                         # MSE on 1000 held-out sequences

What is recorded at every step (:class:`History`): the training loss, the global gradient norm
**before** clipping, ``||g|| = sqrt(sum_p ||dL/dp||^2)``, and the wall time since the start.

Clipping by global norm rescales every gradient by the same factor (``torch.nn.utils.clip_grad_norm_``)::

    g <- g * min(1, clip / (||g|| + 1e-6))

so the direction of the step is kept and its length is bounded.

The loss follows from the targets: float targets use the mean squared error, integer targets
(class ids) use the cross-entropy over the last axis of the output.

Same seed, same model initialisation, same data -> the same losses, bit for bit.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from collections.abc import Iterable, Iterator
from typing import Callable, Union

import torch
from torch import Tensor, nn

__all__ = ["Task", "adding_task", "copy_task", "History", "Evaluation", "loss_fn", "train", "evaluate"]

Batch = tuple[Tensor, Tensor]


@dataclass(frozen=True)
class Task:
    """A supervised task: a name and a seeded sampler ``sample(n, seed) -> (x, y)``.

    Each training step draws a fresh batch with its own seed, so a model never sees the same
    batch twice and a run is reproducible. ``evaluate`` draws its held-out set from a seed
    range training never uses.
    """

    name: str
    sample: Callable[[int, int], Batch]


def adding_task(length: int) -> Task:
    """The adding problem with sequences of ``length`` steps (``course_lib.data.adding_problem``)."""
    from course_lib.data import adding_problem

    return Task(f"adding T={length}", lambda n, seed: adding_problem(n, length, seed=seed))


def copy_task(lag: int, **kwargs) -> Task:
    """The copy task with a ``lag``-step wait (``course_lib.data.copy_task``; kwargs go there)."""
    from course_lib import data

    return Task(f"copy lag={lag}", lambda n, seed: data.copy_task(n, lag, seed=seed, **kwargs))


@dataclass
class History:
    """What one call to :func:`train` saw, one entry per optimisation step."""

    loss: list[float] = field(default_factory=list)        # training loss of the step's batch
    grad_norm: list[float] = field(default_factory=list)   # global gradient norm before clipping
    time: list[float] = field(default_factory=list)        # seconds since training started
    stopped_early: bool = False                            # True when target_loss was reached

    @property
    def steps(self) -> int:
        """Number of optimisation steps taken."""
        return len(self.loss)

    @property
    def seconds(self) -> float:
        """Wall time of the whole run."""
        return self.time[-1] if self.time else 0.0

    def smoothed(self, window: int = 20) -> list[float]:
        """The loss averaged over the last ``window`` steps (fewer at the start)."""
        out, total = [], 0.0
        for k, value in enumerate(self.loss):
            total += value
            if k >= window:
                total -= self.loss[k - window]
            out.append(total / min(k + 1, window))
        return out


@dataclass(frozen=True)
class Evaluation:
    """Held-out scores: the loss, and for class targets the fraction of correct predictions."""

    loss: float
    accuracy: float | None = None


def loss_fn(output: Tensor, target: Tensor) -> Tensor:
    """MSE for float targets; cross-entropy over the last axis of ``output`` for integer targets.

    Float: ``output`` and ``target`` have the same shape, e.g. (N, 1).
    Integer: ``output`` (..., C) logits and ``target`` (...) class ids, e.g. (N, L, C) and (N, L).
    """
    if target.is_floating_point():
        if output.shape != target.shape:
            raise ValueError(f"a regression needs output and target of the same shape, "
                             f"got {tuple(output.shape)} and {tuple(target.shape)}")
        return nn.functional.mse_loss(output, target)
    if output.shape[:-1] != target.shape:
        raise ValueError(f"a classification needs logits (..., C) for targets (...), "
                         f"got {tuple(output.shape)} for {tuple(target.shape)}")
    return nn.functional.cross_entropy(output.reshape(-1, output.shape[-1]), target.reshape(-1))


Batches = Union[Task, Iterable[Batch]]


def _batch_stream(batches: Batches, batch_size: int, seed: int) -> Iterator[Batch]:
    if isinstance(batches, Task):
        step = 0
        while True:
            yield batches.sample(batch_size, _train_seed(seed, step))
            step += 1
    elif isinstance(batches, Iterable) and not isinstance(batches, Tensor):
        yield from batches
    else:
        raise TypeError(f"batches must be a Task or an iterable of (x, y) pairs, got {type(batches).__name__}")


def _train_seed(seed: int, step: int) -> int:
    """The data seed of training step ``step``: below 2**40, away from evaluation seeds."""
    return (seed * 1_000_003 + step) % (2**40)


_EVAL_SEED = 2**41  # evaluation batches use seeds from here on, never drawn by training


def train(
    model: nn.Module,
    batches: Batches,
    *,
    steps: int,
    lr: float = 1e-2,
    clip: float | None = None,
    seed: int = 0,
    batch_size: int = 64,
    target_loss: float | None = None,
    patience: int = 20,
    optimizer: str = "adam",
    progress: bool = True,
) -> History:
    """Train ``model`` in place for at most ``steps`` steps and return its :class:`History`.

    batches      a :class:`Task` (a fresh seeded batch of ``batch_size`` per step) or any
                 iterable of ``(x, y)`` batches (e.g. ``course_lib.data.char_batches``)
    lr           learning rate of Adam (``optimizer="adam"``) or plain SGD (``"sgd"``)
    clip         when set, gradients are rescaled to a global norm of at most ``clip``
    seed         seeds the data of a Task and torch's global generator during training
    target_loss  stop early once the mean training loss of the last ``patience`` steps is below it
    progress     draw a one-line text progress bar on stderr

    The model's initial weights are not touched: build it with ``SequenceModel(cfg, seed=...)``
    to make a whole run reproducible.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if clip is not None and not clip > 0:
        raise ValueError(f"clip must be None or a positive number, got {clip!r}")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.Adam(params, lr=lr) if optimizer == "adam" else torch.optim.SGD(params, lr=lr))
    history = History()
    bar = _ProgressBar(steps, enabled=progress)
    model.train()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        stream = _batch_stream(batches, batch_size, seed)
        start = time.perf_counter()
        for _, (x, y) in zip(range(steps), stream):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            if clip is not None:
                norm = torch.nn.utils.clip_grad_norm_(params, clip)        # returns the norm before clipping
            else:
                norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
            opt.step()
            history.loss.append(loss.item())
            history.grad_norm.append(float(norm))
            history.time.append(time.perf_counter() - start)
            bar.update(history.steps, history.loss[-1])
            if target_loss is not None and history.steps >= patience:
                recent = history.loss[-patience:]
                if sum(recent) / patience < target_loss:
                    history.stopped_early = True
                    break
            if not math.isfinite(history.loss[-1]):
                break
    bar.close()
    return history


@torch.no_grad()
def evaluate(model: nn.Module, data: Task | Batch, *, n: int = 1000, seed: int = 0) -> Evaluation:
    """Score ``model`` on held-out data: a :class:`Task` (``n`` fresh sequences) or one ``(x, y)`` batch."""
    if isinstance(data, Task):
        x, y = data.sample(n, _EVAL_SEED + seed)
    elif isinstance(data, tuple) and len(data) == 2:
        x, y = data
    else:
        raise TypeError(f"evaluate needs a Task or an (x, y) pair, got {type(data).__name__}")
    was_training = model.training
    model.eval()
    try:
        out = model(x)
    finally:
        model.train(was_training)
    loss = loss_fn(out, y).item()
    accuracy = None if y.is_floating_point() else (out.argmax(-1) == y).float().mean().item()
    return Evaluation(loss, accuracy)


class _ProgressBar:
    """``[#####.....] 512/1000 loss 0.0123`` on stderr, redrawn at most ten times a second."""

    def __init__(self, total: int, *, enabled: bool, width: int = 30) -> None:
        self.total, self.enabled, self.width = total, enabled, width
        self._last = 0.0
        self._drawn = False

    def update(self, done: int, loss: float) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.1 and done < self.total:
            return
        self._last = now
        filled = int(self.width * done / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        sys.stderr.write(f"\r[{bar}] {done}/{self.total} loss {loss:.4g}")
        sys.stderr.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
