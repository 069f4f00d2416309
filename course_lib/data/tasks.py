r"""Synthetic memory tasks: the adding problem and the copy task.

Both tasks are built so that the answer depends on inputs seen many steps earlier, which
is what separates an LSTM from a plain RNN. Both are generated in one vectorised shot from
a seeded ``torch.Generator`` (same seed, same data; the global RNG is never touched).

Symbols (as in ``course_lib.reference``): N batch size, L sequence length.

The adding problem (Hochreiter & Schmidhuber, 1997)
---------------------------------------------------
Each time step carries two numbers. Channel 0 is a value :math:`u_t \sim U[0, 1)`;
channel 1 is a marker :math:`m_t \in \{0, 1\}`. Exactly two steps are marked: one drawn
uniformly from the first half, positions :math:`0 \ldots \lfloor L/2 \rfloor - 1`, and one
from the second half, positions :math:`\lfloor L/2 \rfloor \ldots L - 1`. (The 1997 paper
put the first marker among the first ten steps; one marker per half, as in Le et al. 2015
and Arjovsky et al. 2016, keeps the gap about L/2 for every L.) The target is

.. math::
    y = \sum_{t=0}^{L-1} u_t \, m_t ,

the sum of the two marked values, so :math:`y \in [0, 2)`.

The copy task
-------------
A sequence of ``length`` random symbols, then ``lag`` blanks, then a delimiter, then
``length`` more blanks during which the model must reproduce the symbols in order.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_int, make_generator

__all__ = [
    "adding_problem",
    "ADDING_BASELINE_MSE",
    "copy_task",
    "copy_task_mask",
    "copy_task_baseline",
]

ADDING_BASELINE_MSE: float = 1.0 / 6.0
r"""Mean squared error of the best constant guess on the adding problem: 1/6 ~ 0.1667.

The target is :math:`y = u + v` with :math:`u, v` independent and uniform on [0, 1).
The constant that minimises :math:`\mathbb{E}[(y - c)^2]` is :math:`c = \mathbb{E}[y] = 1`,
and what is left is the variance:

.. math::
    \mathbb{E}[(y - 1)^2] = \operatorname{Var}(u) + \operatorname{Var}(v)
    = \tfrac{1}{12} + \tfrac{1}{12} = \tfrac{1}{6} \approx 0.167 .

A model whose MSE stays near this line has learned nothing about the markers ("chance
level"); one well below it has learned to remember the two marked values.
"""


def adding_problem(n: int, length: int, *, seed: int = 0) -> tuple[Tensor, Tensor]:
    r"""``n`` sequences of the adding problem, each ``length`` steps long.

    .. math::
        x_t = (u_t, m_t), \qquad u_t \sim U[0, 1), \qquad y = \sum_t u_t m_t

    with one marker (:math:`m_t = 1`) in positions ``0 .. length//2 - 1`` and one in
    positions ``length//2 .. length - 1``; every other :math:`m_t` is 0.

    Args:
        n: number of sequences N (>= 1).
        length: sequence length L (>= 2, so that each half has a position).
        seed: seed of the ``torch.Generator`` that draws values and marker positions.

    Returns:
        ``x`` of shape (N, L, 2), float32: channel 0 the values, channel 1 the markers;
        ``y`` of shape (N, 1), float32: the sum of the two marked values.

    Example (one sequence of 6 steps; one marker among steps 0-2, one among 3-5)::

        >>> x, y = adding_problem(1, 6, seed=0)
        >>> x[0, :, 0]                      # values u_t
        tensor([0.4963, 0.7682, 0.0885, 0.1320, 0.3074, 0.6341])
        >>> x[0, :, 1]                      # markers m_t
        tensor([0., 1., 0., 0., 1., 0.])
        >>> y                               # 0.7682 + 0.3074
        tensor([[1.0756]])
        >>> x.shape, x.dtype, y.shape, y.dtype
        (torch.Size([1, 6, 2]), torch.float32, torch.Size([1, 1]), torch.float32)
    """
    n = check_int("n", n, 1)
    length = check_int("length", length, 2)
    g = make_generator(seed)
    u = torch.rand((n, length), generator=g)  # (N, L)
    half = length // 2
    first = torch.randint(0, half, (n,), generator=g)  # (N,) in the first half
    second = torch.randint(half, length, (n,), generator=g)  # (N,) in the second half
    m = torch.zeros(n, length)  # (N, L)
    rows = torch.arange(n)
    m[rows, first] = 1.0
    m[rows, second] = 1.0
    x = torch.stack([u, m], dim=-1)  # (N, L, 2)
    y = (u * m).sum(dim=1, keepdim=True)  # (N, 1)
    return x, y


def _copy_sizes(lag: int, n_symbols: int, length: int) -> tuple[int, int, int]:
    """Check the copy-task arguments and return (lag, n_symbols, length)."""
    lag = check_int("lag", lag, 0)
    n_symbols = check_int("n_symbols", n_symbols, 1)
    length = check_int("length", length, 1)
    return lag, n_symbols, length


def copy_task(
    n: int, lag: int, *, n_symbols: int = 8, length: int = 10, seed: int = 0
) -> tuple[Tensor, Tensor]:
    r"""``n`` sequences of the copy task: remember ``length`` symbols across ``lag`` blanks.

    Classes (``C = n_symbols + 2`` of them): ``0 .. n_symbols - 1`` are the symbols,
    ``n_symbols`` is the *blank* and ``n_symbols + 1`` is the *delimiter*. With
    S = ``length`` each sequence has

    .. math::
        T = S + \text{lag} + 1 + S = 2S + \text{lag} + 1

    steps laid out as::

        input : s_1 .. s_S | blank x lag | delim | blank x S
        target: blank x (S + lag + 1)            | s_1 .. s_S

    so symbol :math:`s_i` is read at step :math:`i - 1` and must be written at step
    :math:`S + \text{lag} + i`: it is held for :math:`S + \text{lag} + 1` steps.
    Every step has a target. The blank targets are easy; the last S steps are the ones
    that test memory: ``copy_task_mask(lag, length=length)`` marks them, for
    accuracy on the recalled symbols. Train on all T steps with cross-entropy
    (``copy_task_baseline`` gives the chance level of that loss), or on the masked ones.

    Args:
        n: number of sequences N (>= 1).
        lag: number of blanks between the last symbol and the delimiter (>= 0).
        n_symbols: number of distinct symbols (>= 1).
        length: number of symbols S to remember (>= 1).
        seed: seed of the ``torch.Generator`` that draws the symbols.

    Returns:
        ``x`` of shape (N, T, C), float32, one-hot inputs (``x.argmax(-1)`` gives the class ids);
        ``y`` of shape (N, T), int64, target class ids.

    Example (3 symbols from {0, 1, 2}, lag 2; blank = 3, delimiter = 4, T = 9)::

        >>> x, y = copy_task(1, lag=2, n_symbols=3, length=3, seed=0)
        >>> x.shape, x.dtype, y.dtype
        (torch.Size([1, 9, 5]), torch.float32, torch.int64)
        >>> x[0].argmax(-1)                  # s s s _ _ : _ _ _
        tensor([2, 0, 2, 3, 3, 4, 3, 3, 3])
        >>> y[0]                             # _ _ _ _ _ _ s s s
        tensor([3, 3, 3, 3, 3, 3, 2, 0, 2])
    """
    n = check_int("n", n, 1)
    lag, n_symbols, length = _copy_sizes(lag, n_symbols, length)
    blank, delimiter = n_symbols, n_symbols + 1
    T = 2 * length + lag + 1
    g = make_generator(seed)
    symbols = torch.randint(0, n_symbols, (n, length), generator=g)  # (N, S)
    inputs = torch.full((n, T), blank, dtype=torch.long)  # (N, T)
    inputs[:, :length] = symbols
    inputs[:, length + lag] = delimiter
    targets = torch.full((n, T), blank, dtype=torch.long)  # (N, T)
    targets[:, T - length :] = symbols
    x = F.one_hot(inputs, n_symbols + 2).float()  # (N, T, C)
    return x, targets


def copy_task_mask(lag: int, *, length: int = 10) -> Tensor:
    """Boolean mask (T,) that is True on the last ``length`` steps, where symbols are recalled.

    Use it to score only the recall, e.g. ``(pred == y)[:, mask].float().mean()``.

        >>> copy_task_mask(2, length=3)
        tensor([False, False, False, False, False, False,  True,  True,  True])
    """
    lag, _, length = _copy_sizes(lag, 1, length)
    T = 2 * length + lag + 1
    mask = torch.zeros(T, dtype=torch.bool)  # (T,)
    mask[T - length :] = True
    return mask


def copy_task_baseline(lag: int, *, n_symbols: int = 8, length: int = 10) -> float:
    r"""Cross-entropy (nats per step, averaged over all T steps) of the memoryless strategy.

    A model with no memory can still learn to output the blank with certainty for the first
    :math:`T - S` steps (loss 0) and a uniform guess over the symbols for the last S
    (loss :math:`\ln(\text{n\_symbols})` each), as in Arjovsky et al. (2016):

    .. math::
        \text{baseline} = \frac{S \ln(\text{n\_symbols})}{T}, \qquad T = 2S + \text{lag} + 1 .

        >>> round(copy_task_baseline(2, n_symbols=3, length=3), 4)  # 3 ln 3 / 9
        0.3662
    """
    lag, n_symbols, length = _copy_sizes(lag, n_symbols, length)
    T = 2 * length + lag + 1
    return length * math.log(n_symbols) / T
