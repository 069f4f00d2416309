"""Training experiments behind the book's claims: solve rates, length generalisation, clipping, small data.

- :func:`solve` trains one model on the adding problem at one length and says whether it got below
  the target; :func:`solve_sweep` repeats it over kinds, lengths and seeds; :func:`parallel_calls`
  runs such runs side by side; :func:`find_result` picks one run back out and :func:`summarize`
  groups them
- :func:`length_generalization` scores a trained model on longer sequences than it saw
- :func:`clipping_runs` trains RNNs in the exploding regime with and without gradient clipping
- :func:`small_data_run` trains on a fixed, small training set and scores on fresh data
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from course_lib.models import ModelConfig, SequenceModel
from course_lib.train import History, Task, adding_task, evaluate, train

__all__ = ["SolveResult", "solve", "solve_sweep", "find_result", "Summary", "summarize",
           "length_generalization", "ClipRun", "clipping_runs", "parallel_calls", "SmallDataRun",
           "small_data_run", "SMALL_DATA_SEED"]

#: The seed of :func:`small_data_run`'s fixed training sets (plus the run's seed): away from the
#: seeds of training batches and evaluation sets.
SMALL_DATA_SEED = 2**40 + 7


@dataclass(frozen=True)
class SolveResult:
    """One training run on a task at one length: did the model get below the target?"""

    kind: str
    length: int
    seed: int
    steps: int          # optimisation steps taken (fewer than the budget when it stopped early)
    seconds: float      # wall time of the training run
    cpu_seconds: float  # CPU time of the training run (steadier than wall time on a busy machine)
    loss: float         # held-out loss after training
    solved: bool        # held-out loss below ``target``
    model: nn.Module | None = field(default=None, repr=False, compare=False)   # the trained model


def solve(
    kind: str,
    length: int,
    *,
    seed: int = 0,
    task: Callable[[int], Task] = adding_task,
    hidden_size: int = 64,
    max_steps: int = 1000,
    target: float = 0.01,
    lr: float = 1e-2,
    clip: float | None = 1.0,
    batch_size: int = 64,
    **config,
) -> SolveResult:
    """Train a fresh ``kind`` model on ``task(length)`` until its loss is below ``target`` or the
    budget of ``max_steps`` runs out, then score it on held-out data.

    Training stops early at half the target (mean of the last 20 training losses), so that a
    model that stopped is comfortably below ``target`` on held-out data; ``solved`` is decided
    on held-out data only. The defaults are the adding problem's: the mean-squared error of
    always answering 1 is 1/6 ~ 0.167, and 0.01 is reached only by reading both marked numbers.
    Extra keyword arguments go to :class:`ModelConfig`.
    """
    t = task(length)
    x, y = t.sample(2, 0)
    cfg = ModelConfig(kind=kind, input_size=x.shape[-1], hidden_size=hidden_size,
                      output_size=y.shape[-1], readout="last", **config)
    model = SequenceModel(cfg, seed=seed)
    cpu_start = time.process_time()
    history = train(model, t, steps=max_steps, lr=lr, clip=clip, seed=seed, batch_size=batch_size,
                    target_loss=target / 2, progress=False)
    cpu_seconds = time.process_time() - cpu_start
    loss = evaluate(model, t, n=1000, seed=seed).loss
    return SolveResult(kind, length, seed, history.steps, history.seconds, cpu_seconds, loss, loss < target, model)


@dataclass(frozen=True)
class Summary:
    """The runs of one kind at one length, summarised (medians over seeds)."""

    kind: str
    length: int
    runs: int
    solved: int            # how many runs reached the target on held-out data
    loss: float            # median held-out loss
    steps: float           # median steps taken
    cpu_seconds: float     # median CPU seconds of training

    @property
    def solve_rate(self) -> float:
        """The share of runs that reached the target, ``solved / runs``: 1.0 means every seed did."""
        return self.solved / self.runs


def find_result(results: Sequence[SolveResult], kind: str, length: int, seed: int = 0) -> SolveResult:
    """The run of ``kind`` at ``length`` with ``seed`` among ``results`` (as :func:`solve_sweep` returns them)."""
    for r in results:
        if (r.kind, r.length, r.seed) == (kind, length, seed):
            return r
    raise ValueError(f"no run of kind={kind!r}, length={length}, seed={seed} among these {len(results)} results")


def summarize(results: Sequence[SolveResult]) -> dict[tuple[str, int], Summary]:
    """Group :class:`SolveResult` s by (kind, length), in the order they first appear."""
    groups: dict[tuple[str, int], list[SolveResult]] = {}
    for r in results:
        groups.setdefault((r.kind, r.length), []).append(r)
    return {key: Summary(key[0], key[1], len(rs), sum(r.solved for r in rs),
                         statistics.median(r.loss for r in rs), statistics.median(r.steps for r in rs),
                         statistics.median(r.cpu_seconds for r in rs))
            for key, rs in groups.items()}


@dataclass(frozen=True)
class ClipRun:
    """One training run of the clipping experiment."""

    clip: float | None
    seed: int
    history: History
    diverged: bool      # the training loss became inf or NaN (training stops there)


def clipping_runs(
    clips: Sequence[float | None] = (None, 1.0),
    seeds: Sequence[int] = (0, 1, 2),
    *,
    length: int = 10,
    recurrent_init_scale: float = 3.0,
    optimizer: str = "sgd",
    lr: float = 0.1,
    steps: int = 400,
    hidden_size: int = 32,
    batch_size: int = 32,
) -> list[ClipRun]:
    """Train tanh RNNs in the exploding-gradient regime on the adding problem, with and without clipping.

    The recurrent weights start ``recurrent_init_scale`` times PyTorch's default, so that
    ``||ds_L/ds_t||`` grows with the lag (see :func:`jacobian_norms_by_lag`). Plain SGD is the
    default because its step is proportional to the gradient; Adam divides each step by a running
    gradient scale and so hides most of an explosion by itself. Same seed, same initial weights
    and batches, with and without clipping.
    """
    task = adding_task(length)
    runs = []
    for seed in seeds:
        for clip in clips:
            cfg = ModelConfig(kind="rnn", input_size=2, hidden_size=hidden_size,
                              recurrent_init_scale=recurrent_init_scale)
            model = SequenceModel(cfg, seed=seed)
            history = train(model, task, steps=steps, lr=lr, clip=clip, seed=seed, batch_size=batch_size,
                            optimizer=optimizer, progress=False)
            diverged = not all(math.isfinite(v) for v in history.loss)
            runs.append(ClipRun(clip, seed, history, diverged))
    return runs


@torch.no_grad()
def length_generalization(model: nn.Module, lengths: Sequence[int], *,
                          task: Callable[[int], Task] = adding_task, n: int = 1000, seed: int = 0) -> list[float]:
    """Held-out loss of a trained ``model`` on ``task(T)`` for every T in ``lengths``.

    A model trained at one length and scored at longer ones: does what it learned hold when
    the sequence (and the stretch it must remember across) grows?
    """
    return [evaluate(model, task(T), n=n, seed=seed).loss for T in lengths]


def parallel_calls(calls: Sequence[tuple[Callable[..., object], dict]], *, workers: int = 2) -> list:
    """``fn(**kwargs)`` for every ``(fn, kwargs)`` of ``calls``, results in the same order.

    ``workers > 1`` runs the calls side by side in that many fresh processes, each on one thread
    (``torch.set_num_threads(1)``); ``fn`` must be importable (a module-level function such as
    :func:`solve`). Seeded calls give the same results as with ``workers=1``: only the wall time
    changes. On a machine with two cores, two workers do about twice the work per second.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if workers == 1 or len(calls) < 2:
        return [fn(**kwargs) for fn, kwargs in calls]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")    # a fresh interpreter: no forked thread pools
    with ProcessPoolExecutor(max_workers=min(workers, len(calls)), mp_context=context,
                             initializer=torch.set_num_threads, initargs=(1,)) as pool:
        futures = [pool.submit(fn, **kwargs) for fn, kwargs in calls]
        return [f.result() for f in futures]


def solve_sweep(kinds: Sequence[str], lengths: Sequence[int], seeds: Sequence[int] = (0,), *,
                workers: int = 1, **kwargs) -> list[SolveResult]:
    """:func:`solve` for every kind, length and seed (keyword arguments go to ``solve``);
    ``workers`` as in :func:`parallel_calls`."""
    calls = [(solve, dict(kind=kind, length=length, seed=seed, **kwargs))
             for kind in kinds for length in lengths for seed in seeds]
    return parallel_calls(calls, workers=workers)


@dataclass(frozen=True)
class SmallDataRun:
    """One model trained on a fixed, small training set: its loss there and on fresh sequences."""

    kind: str
    seed: int
    n_train: int
    train_loss: float   # loss on the whole training set after training
    test_loss: float    # loss on 1000 held-out sequences

    @property
    def gap(self) -> float:
        """``test_loss - train_loss``: how much worse the model does on data it has not seen."""
        return self.test_loss - self.train_loss


def small_data_run(kind: str, *, n_train: int = 1000, length: int = 10, seed: int = 0, steps: int = 1000,
                   hidden_size: int = 32, batch_size: int = 32, lr: float = 1e-2, clip: float | None = 1.0,
                   task: Callable[[int], Task] = adding_task, **config) -> SmallDataRun:
    """Train a fresh ``kind`` model for ``steps`` steps on the same ``n_train`` sequences of
    ``task(length)`` (reshuffled every epoch) and score it on them and on held-out sequences.

    With a few thousand weights and ``n_train`` examples seen many times over, a model can fit
    its training set better than the task: the gap between the two losses measures it.
    Extra keyword arguments go to :class:`ModelConfig`.
    """
    if isinstance(n_train, bool) or not isinstance(n_train, int) or n_train < batch_size:
        raise ValueError(f"n_train must be an integer of at least batch_size={batch_size}, got {n_train!r}")
    t = task(length)
    x, y = t.sample(n_train, SMALL_DATA_SEED + seed)
    cfg = ModelConfig(kind=kind, input_size=x.shape[-1], hidden_size=hidden_size,
                      output_size=y.shape[-1], readout="last", **config)
    model = SequenceModel(cfg, seed=seed)
    gen = torch.Generator().manual_seed(seed)

    def epochs():
        while True:
            order = torch.randperm(n_train, generator=gen)
            for start in range(0, n_train - batch_size + 1, batch_size):
                idx = order[start:start + batch_size]
                yield x[idx], y[idx]

    train(model, epochs(), steps=steps, lr=lr, clip=clip, seed=seed, progress=False)
    train_loss = evaluate(model, (x, y)).loss
    return SmallDataRun(kind, seed, n_train, train_loss, evaluate(model, t, n=1000, seed=seed).loss)


