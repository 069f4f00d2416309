"""What a model costs: parameters, seconds per training or generation step, memory, autograd nodes.

- :func:`n_parameters`          the trainable numbers of a module
- :func:`step_time`             median seconds of one training step (forward, loss, backward, Adam)
- :func:`inference_step_time`   median seconds of one new output given a context, with or without a KV cache
- :func:`training_memory`       the bytes one training step holds, as a :class:`MemoryUse`
- :func:`training_cost`         both, as a :class:`StepCost`
- :func:`autograd_nodes`        what an implementation runs: many small operations or one fused kernel

The timings are medians from :func:`course_lib.measure.timing.median_seconds`.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from course_lib.measure.timing import median_seconds
from course_lib.models import SequenceModel
from course_lib.train import loss_fn

__all__ = ["n_parameters", "step_time", "inference_step_time", "autograd_nodes", "MemoryUse",
           "training_memory", "StepCost", "training_cost"]


def n_parameters(module: nn.Module) -> int:
    """The number of trainable numbers in ``module``: ``sum(p.numel())`` over its parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


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
    kind, the reference cells in a Python loop (:meth:`~course_lib.models.RecurrentModel.unrolled`).
    The model's weights change during the measurement (it trains on the batch).
    """
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def one_step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(_forward(model, x, implementation), y).backward()
        opt.step()

    return median_seconds({"step": one_step}, repeats=repeats, warmup=warmup, clock=clock)["step"]


@torch.no_grad()
def inference_step_time(model: SequenceModel, context_len: int, *, kv_cache: bool = False, repeats: int = 20,
                        warmup: int = 2, clock: str = "cpu") -> float:
    """Median seconds to produce the output for one new input after ``context_len`` inputs (batch 1).

    Only that one output is timed; the context is fed beforehand, with seeded random inputs.

    - A recurrent model carries its state: one :meth:`~course_lib.models.RecurrentModel.step`, whatever the context.
    - A transformer with ``kv_cache=False`` reruns ``forward`` on the whole prefix of
      ``context_len + 1`` inputs (a forward pass keeps no cache of past keys and values).
    - A transformer with ``kv_cache=True`` first steps through the context to fill a
      :class:`~course_lib.models.KVCache`, then the timed call is one :meth:`~course_lib.models.AttentionModel.step`:
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
            return median_seconds({"forward": lambda: model(xs)}, repeats=repeats, warmup=warmup,
                                  clock=clock)["forward"]
        state = None                                              # the recurrent state, or the KV cache
        for x_t in xs[:, :context_len].unbind(1):
            _, state = model.step(x_t, state)
        last = xs[:, context_len]
        return median_seconds({"step": lambda: model.step(last, state)}, repeats=repeats, warmup=warmup,
                              clock=clock)["step"]
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

