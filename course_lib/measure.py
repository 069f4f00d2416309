"""Measurements behind the book's claims: gradients through time, gates, cost, memory, solve rates.

Gradients through time (the vanishing-gradient picture), indexed by the **lag** k = L - t, how
many steps before the end of the sequence ``h_t`` was computed:

- :func:`grad_norms_by_lag`      ``||dL/dh_t||`` for every step, from autograd through the reference loop
- :func:`jacobian_norms_by_lag`  ``||ds_L/ds_t||_2``, the product of the step Jacobians ``ds_k/ds_{k-1}``

An LSTM's inner life: :func:`record_lstm_gates` gives ``i_t, f_t, g_t, o_t, c_t, h_t`` at every step.

Cost: :func:`n_parameters`, :func:`step_time` (one training step), :func:`inference_step_time`
(one new output given a context, with or without a transformer's KV cache), :func:`training_memory`
(what training holds in memory), :func:`training_cost` (both, as a :class:`StepCost`),
:func:`autograd_nodes` (what an implementation runs: many small operations or one fused kernel).

Solve rates: :func:`solve` trains one model on the adding problem at one length and says whether
it got below the target; :func:`solve_sweep` repeats it over kinds, lengths and seeds,
:func:`parallel_calls` runs such runs side by side, :func:`find_result` picks one run back out and :func:`summarize` groups them;
:func:`length_generalization` scores a trained model on longer sequences than it saw;
:func:`clipping_runs` trains RNNs in the exploding regime with and without gradient clipping;
:func:`small_data_run` trains on a fixed, small training set and scores on fresh data.

Reading the numbers: :func:`share_at_lag` (how much of a gradient is left k steps back),
:func:`format_span` (a range of ratios, as the verdicts write it), :func:`format_table`.
"""
from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from course_lib.models import ModelConfig, SequenceModel
from course_lib.reference import lstm_gates, weights_of
from course_lib.train import History, Task, adding_task, evaluate, loss_fn, train

__all__ = [
    "GateRecord", "record_lstm_gates",
    "grad_norms_by_lag", "jacobian_norms_by_lag", "share_at_lag",
    "n_parameters", "step_time", "inference_step_time", "autograd_nodes", "MemoryUse", "training_memory",
    "StepCost", "training_cost",
    "SolveResult", "solve", "solve_sweep", "find_result", "Summary", "summarize", "format_table", "format_span",
    "length_generalization", "ClipRun", "clipping_runs", "parallel_calls", "SmallDataRun", "small_data_run",
]


class GateRecord(NamedTuple):
    """An LSTM layer's gates and states at every step, each (N, L, H)."""

    i: Tensor   # input gate
    f: Tensor   # forget gate
    g: Tensor   # candidate
    o: Tensor   # output gate
    c: Tensor   # cell state c_t
    h: Tensor   # hidden state h_t


@torch.no_grad()
def record_lstm_gates(model: SequenceModel | nn.LSTM, x: Tensor, *, layer: int = 0) -> GateRecord:
    """Run ``x`` through an LSTM and record every gate of layer ``layer`` at every step.

    ``model`` is an LSTM :class:`SequenceModel` (``x`` as its forward takes it) or an ``nn.LSTM``
    (``x`` in its own layout). The gates come from ``course_lib.reference.lstm_gates`` with the
    module's weights; ``c_t`` and ``h_t`` are the cell's update rule applied to them, so they
    agree with the module's own output.
    """
    if isinstance(model, SequenceModel):
        if model.kind != "lstm":
            raise ValueError(f"record_lstm_gates needs an LSTM, got kind={model.kind!r}")
        lstm_module, z, batch_first = model.core, model.embed_inputs(x), True
    elif isinstance(model, nn.LSTM):
        lstm_module, z, batch_first = model, x, model.batch_first
    else:
        raise TypeError(f"expected an LSTM SequenceModel or an nn.LSTM, got {type(model).__name__}")
    layers = weights_of(lstm_module)
    if not 0 <= layer < len(layers):
        raise ValueError(f"layer must be in 0..{len(layers) - 1}, got {layer}")
    xs = z.transpose(0, 1) if batch_first else z                   # (L, N, H_in)
    for k in range(layer + 1):
        w = layers[k]
        h = c = xs.new_zeros(xs.shape[1], w.w_hh.shape[1])        # (N, H)
        rows = []
        for x_t in xs.unbind(0):
            i, f, g, o = lstm_gates(x_t, h, *w)                   # each (N, H)
            c = f * c + i * g
            h = o * torch.tanh(c)
            rows.append((i, f, g, o, c, h))
        xs = torch.stack([r[5] for r in rows])                    # (L, N, H): the next layer's input
    return GateRecord(*(torch.stack(seq, dim=1) for seq in zip(*rows)))  # each (N, L, H)


# ---------------------------------------------------------------------------- gradients in time
def grad_norms_by_lag(model: SequenceModel, x: Tensor, y: Tensor) -> Tensor:
    """``||dL/dh_t||`` for every step, indexed by lag: entry k is the state k steps before the end.

    ``L`` is the model's loss on the batch (``course_lib.train.loss_fn``). The norm is taken over
    the whole (N, H) gradient. With ``readout="last"`` the loss sees ``h_L`` only, so the entry
    at lag k measures how much of the error signal survives k steps of backpropagation through time.
    Returns a tensor (L,).
    """
    out, hs = model.unrolled(x)
    loss = loss_fn(out, y)
    grads = torch.autograd.grad(loss, hs, allow_unused=True)
    norms = torch.stack([torch.zeros(()) if g is None else g.norm() for g in grads])  # (L,), t = 1..L
    return norms.flip(0).detach()


def jacobian_norms_by_lag(model: SequenceModel, x: Tensor) -> Tensor:
    r"""Spectral norm of the state-to-state Jacobian ``ds_L/ds_t``, by lag k = L - t, batch mean.

    .. math::
        \frac{\partial s_L}{\partial s_t} = \prod_{k=t+1}^{L} \frac{\partial s_k}{\partial s_{k-1}}

    The state ``s_t`` is ``h_t`` for the RNN and GRU, and ``(h_t, c_t)`` stacked for the LSTM
    (so the LSTM's matrices are 2H x 2H). For a tanh RNN each factor is ``diag(1 - h_k^2) W_hh``.
    Single-layer recurrent models only. Returns a tensor (L,), entry 0 being 1 (the identity).
    """
    if model.kind == "transformer" or model.config.num_layers != 1:
        raise ValueError("jacobian_norms_by_lag measures a single-layer recurrent model")
    z = model.embed_inputs(x)
    N = z.shape[0]
    states, state = [], None
    for x_t in z.unbind(1):
        _, state = model.step_hidden(x_t, state)
        states.append(state)                                      # (1, N, H) or ((1, N, H), (1, N, H))
    parts = [list(s) if isinstance(s, tuple) else [s] for s in states]
    s_L = torch.cat([p[0] for p in parts[-1]], dim=-1)            # (N, S), S = H or 2H
    S = s_L.shape[-1]
    basis = torch.eye(S).unsqueeze(1).expand(S, N, S)             # (S, N, S): one row of J per entry
    flat = [p for ps in parts for p in ps]
    grads = torch.autograd.grad(s_L, flat, grad_outputs=basis, is_grads_batched=True, allow_unused=True)
    norms, k = [], 0
    for ps in parts:
        g = [torch.zeros(S, 1, N, p.shape[-1]) if gr is None else gr
             for gr, p in zip(grads[k:k + len(ps)], ps)]
        k += len(ps)
        J = torch.cat(g, dim=-1)[:, 0].permute(1, 0, 2)          # (N, S, S): J[n, i, j] = ds_L[n,i]/ds_t[n,j]
        norms.append(torch.linalg.matrix_norm(J, ord=2).mean())
    return torch.stack(norms).flip(0).detach()


def share_at_lag(norms: Tensor | Sequence[float], lag: int) -> float:
    """``norms[lag] / norms[0]``: the share of the error signal still left ``lag`` steps back.

    ``norms`` is indexed by lag, as :func:`grad_norms_by_lag` and :func:`jacobian_norms_by_lag`
    return it. Example: norms ``[2.0, 1.0, 0.02]`` keep 0.5 of the signal at lag 1 and 0.01 at lag 2.
    """
    values = [float(v) for v in norms]
    if isinstance(lag, bool) or not isinstance(lag, int) or not 0 <= lag < len(values):
        raise ValueError(f"lag must be an integer in 0..{len(values) - 1}, got {lag!r}")
    if values[0] == 0:
        raise ValueError("norms[0] is 0: there is no signal at lag 0 to take a share of")
    return values[lag] / values[0]


# ---------------------------------------------------------------------------------------- cost
def n_parameters(module: nn.Module) -> int:
    """The number of trainable numbers in ``module``: ``sum(p.numel())`` over its parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


_CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def _median_time(fn: Callable[[], object], repeats: int, warmup: int, clock: str) -> float:
    if clock not in _CLOCKS:
        raise ValueError(f"clock must be 'cpu' (process time) or 'wall', got {clock!r}")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    tick = _CLOCKS[clock]
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = tick()
        fn()
        times.append(tick() - start)
    return statistics.median(times)


_IMPLEMENTATIONS = ("torch", "reference")


def _forward(model: nn.Module, x: Tensor, implementation: str) -> Tensor:
    """``model(x)`` through PyTorch's layers, or through the reference cells' Python loop."""
    if implementation not in _IMPLEMENTATIONS:
        raise ValueError(f"implementation must be 'torch' (PyTorch's layers) or 'reference' "
                         f"(the reference cells in a Python loop), got {implementation!r}")
    if implementation == "reference":
        if not isinstance(model, SequenceModel):
            raise TypeError("implementation='reference' needs a SequenceModel")
        return model.unrolled(x)[0]
    return model(x)


def step_time(model: nn.Module, x: Tensor, y: Tensor, *, repeats: int = 5, warmup: int = 1,
              clock: str = "cpu", implementation: str = "torch") -> float:
    """Median seconds of one training step on ``(x, y)``: forward, loss, backward, Adam update.

    ``clock="cpu"`` counts the process's CPU time (``time.process_time``), which a busy shared
    machine disturbs far less than the wall clock; ``clock="wall"`` uses ``time.perf_counter``.
    ``implementation="torch"`` times PyTorch's own layers (which may call fused, vendor-tuned
    kernels for some kinds and not others); ``"reference"`` times the same arithmetic for every
    kind, the reference cells in a Python loop (:meth:`SequenceModel.unrolled`).
    The model's weights change during the measurement (it trains on the batch).
    """
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def one_step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(_forward(model, x, implementation), y).backward()
        opt.step()

    return _median_time(one_step, repeats, warmup, clock)


@torch.no_grad()
def inference_step_time(model: SequenceModel, context_len: int, *, kv_cache: bool = False, repeats: int = 20,
                        warmup: int = 2, clock: str = "cpu") -> float:
    """Median seconds to produce the output for one new input after ``context_len`` inputs (batch 1).

    Only that one output is timed; the context is fed beforehand, with seeded random inputs.

    - A recurrent model carries its state: one :meth:`SequenceModel.step`, whatever the context.
    - A transformer with ``kv_cache=False`` reruns ``forward`` on the whole prefix of
      ``context_len + 1`` inputs (``nn.TransformerEncoder`` keeps no cache of past keys and values).
    - A transformer with ``kv_cache=True`` first steps through the context to fill a
      :class:`~course_lib.models.KVCache`, then the timed call is one :meth:`SequenceModel.step`:
      the newest position attends over the ``context_len`` cached keys and values.
    """
    cfg = model.config
    if isinstance(context_len, bool) or not isinstance(context_len, int) or context_len < 0:
        raise ValueError(f"context_len must be a non-negative integer, got {context_len!r}")
    if kv_cache and model.kind != "transformer":
        raise ValueError(f"kv_cache=True applies to a transformer; a {model.kind} model carries its state anyway")
    if model.kind == "transformer" and context_len + 1 > cfg.max_len:
        raise ValueError(f"context_len + 1 = {context_len + 1} exceeds this transformer's max_len={cfg.max_len}")
    gen = torch.Generator().manual_seed(0)
    if cfg.vocab_size:
        xs = torch.randint(0, cfg.vocab_size, (1, context_len + 1), generator=gen)
    else:
        xs = torch.randn(1, context_len + 1, cfg.input_size, generator=gen)
    was_training = model.training
    model.eval()
    try:
        if model.kind == "transformer" and not kv_cache:
            return _median_time(lambda: model(xs), repeats, warmup, clock)
        state = None                                              # the recurrent state, or the KV cache
        for x_t in xs[:, :context_len].unbind(1):
            _, state = model.step(x_t, state)
        last = xs[:, context_len]
        return _median_time(lambda: model.step(last, state), repeats, warmup, clock)
    finally:
        model.train(was_training)


def autograd_nodes(output: Tensor) -> Counter[str]:
    """Count the nodes of the backward graph behind ``output``, by type (``"AddmmBackward0"``, ...).

    Shows what an implementation actually runs: a layer written as per-step operations leaves
    a few nodes per time step, a fused kernel leaves one node for the whole sequence.
    """
    counts: Counter[str] = Counter()
    seen, stack = set(), [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        counts[type(node).__name__] += 1
        stack.extend(next_node for next_node, _ in node.next_functions)
    return counts


@dataclass(frozen=True)
class MemoryUse:
    """Bytes a training step holds: activations saved for backward, and the parameter-sized buffers."""

    activations: int      # tensors autograd keeps from the forward pass for the backward pass
    parameters: int       # the weights
    gradients: int        # one gradient per weight
    optimizer: int        # Adam's two moment estimates per weight

    @property
    def total(self) -> int:
        return self.activations + self.parameters + self.gradients + self.optimizer


def training_memory(model: nn.Module, x: Tensor, y: Tensor, *, implementation: str = "torch") -> MemoryUse:
    """What one training step on ``(x, y)`` must hold in memory, counted tensor by tensor.

    Activations are measured, not estimated: every tensor autograd saves for the backward pass
    is caught with ``torch.autograd.graph.saved_tensors_hooks`` and its storage counted once
    (storages shared by several saved tensors, and the parameters themselves, are not
    counted again). This is the part that grows with sequence length and batch size. The
    parameter-sized buffers are counted for Adam (weights, gradients, two moments).
    ``implementation`` as in :func:`step_time`.
    """
    param_storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in param_storages and ptr not in seen:
            seen[ptr] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_fn(_forward(model, x, implementation), y)
    del loss
    p_bytes = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return MemoryUse(activations=sum(seen.values()), parameters=p_bytes, gradients=p_bytes, optimizer=2 * p_bytes)


class StepCost(NamedTuple):
    """What one training step costs: seconds (:func:`step_time`) and bytes held (:func:`training_memory`)."""

    seconds: float
    memory: float

    def relative_to(self, base: StepCost) -> StepCost:
        """This cost in units of ``base``'s: ``(seconds / base.seconds, memory / base.memory)``.

        ``StepCost(0.4, 800).relative_to(StepCost(0.1, 200))`` is ``StepCost(4.0, 4.0)``.
        """
        if not isinstance(base, StepCost):
            raise TypeError(f"expected a StepCost to compare with, got {type(base).__name__}")
        if base.seconds <= 0 or base.memory <= 0:
            raise ValueError(f"the base cost must be positive in both fields, got {base}")
        return StepCost(self.seconds / base.seconds, self.memory / base.memory)


def training_cost(model: nn.Module, x: Tensor, y: Tensor, *, repeats: int = 5,
                  implementation: str = "torch") -> StepCost:
    """The time (:func:`step_time`, median CPU seconds) and the memory (:func:`training_memory`,
    total bytes) of one training step on ``(x, y)``; ``implementation`` as in :func:`step_time`.

    The model's weights change during the measurement (it trains on the batch).
    """
    seconds = step_time(model, x, y, repeats=repeats, implementation=implementation)
    memory = training_memory(model, x, y, implementation=implementation).total
    return StepCost(seconds, memory)


# --------------------------------------------------------------------------------- solve rates
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


def format_table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    """A plain-text table, columns padded to their widest cell (floats with 4 significant digits)."""
    def cell(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    if any(len(row) != len(headers) for row in rows):
        raise ValueError(f"every row needs {len(headers)} cells, one per header")
    text = [[str(h) for h in headers]] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(row[j]) for row in text) for j in range(len(headers))]
    numeric = [bool(rows) and all(isinstance(row[j], (int, float)) for row in rows) for j in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)).rstrip()
             for row in text]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_span(ratios: Sequence[float], digits: int = 1) -> str:
    """A range of ratios as the verdicts write it: ``"0.4-0.5x"``, or ``"4.0x"`` when both ends
    agree at ``digits`` decimals. ``format_span([0.42, 0.47])`` is ``"0.4-0.5x"``."""
    values = [float(r) for r in ratios]
    if not values:
        raise ValueError("format_span needs at least one ratio")
    lo, hi = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
    return f"{lo}x" if lo == hi else f"{lo}-{hi}x"


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
    x, y = t.sample(n_train, _SMALL_DATA_SEED + seed)
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


_SMALL_DATA_SEED = 2**40 + 7  # the fixed training sets: away from training batches and evaluation sets
