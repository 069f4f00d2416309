r"""A synthetic seasonal time series, sliding windows over it, and a chronological split.

The series imitates an hourly measurement with a daily rhythm (period P = 24 steps), a slow
drift and noise:

.. math::
    s_t = \sin\!\left(\frac{2\pi t}{P}\right) + \tfrac12 \sin\!\left(\frac{4\pi t}{P}\right)
          + \beta\, t + \sigma\, \varepsilon_t, \qquad \varepsilon_t \sim \mathcal{N}(0, 1),

for :math:`t = 0, \ldots, n_{\text{steps}} - 1`. The second harmonic makes each "day"
lopsided (a morning and an evening bump), so the shape is not a plain sine.

The usual pipeline splits first, then windows each part, so that no test value leaks into
a training window::

    s = seasonal_series(1000)
    train, test = train_test_split_series(s, 0.8)
    X_train, y_train = windows(train, window=48, horizon=1)
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ._checks import check_int, make_generator

__all__ = ["seasonal_series", "windows", "train_test_split_series"]


def seasonal_series(
    n_steps: int,
    *,
    period: int = 24,
    trend: float = 0.002,
    noise: float = 0.1,
    seed: int = 0,
) -> Tensor:
    r"""A seasonal series :math:`s_0 \ldots s_{n-1}` (see the module docstring for the formula).

    Args:
        n_steps: number of time steps (>= 1).
        period: length P of one season in steps (>= 2); 24 reads as hours in a day.
        trend: slope :math:`\beta`, added per step (0.002 rises by about 0.05 a "day").
        noise: standard deviation :math:`\sigma` of the Gaussian noise (>= 0; 0 gives the
            clean curve).
        seed: seed of the ``torch.Generator`` that draws the noise.

    Returns:
        float32 tensor of shape (n_steps,).

    Example (no noise, period 4: the sines give 0, 1, 0, -1 and 0, 0, 0, 0)::

        >>> seasonal_series(5, period=4, trend=0.5, noise=0.0)
        tensor([0.0000, 1.5000, 1.0000, 0.5000, 2.0000])
    """
    n_steps = check_int("n_steps", n_steps, 1)
    period = check_int("period", period, 2)
    if not noise >= 0:
        raise ValueError(f"noise must be a standard deviation >= 0, got {noise}.")
    g = make_generator(seed)
    t = torch.arange(n_steps, dtype=torch.float64)  # (n,)
    phase = 2 * math.pi * t / period  # (n,)
    season = torch.sin(phase) + 0.5 * torch.sin(2 * phase)  # (n,)
    eps = torch.randn(n_steps, generator=g, dtype=torch.float64)  # (n,)
    s = season + trend * t + noise * eps  # (n,)
    return s.float()


def windows(series: Tensor, window: int, horizon: int = 1) -> tuple[Tensor, Tensor]:
    r"""Cut a 1-D series into overlapping (input window, next values) pairs.

    Pair i uses steps ``i .. i+window-1`` as input and the following ``horizon`` steps
    as target:

    .. math::
        X_i = (s_i, \ldots, s_{i+w-1}), \qquad y_i = (s_{i+w}, \ldots, s_{i+w+h-1}),
        \qquad i = 0, \ldots, n - w - h .

    Args:
        series: 1-D tensor (or array-like) of length n.
        window: input length w (>= 1).
        horizon: number of future steps h to predict (>= 1).

    Returns:
        ``X`` of shape (n - w - h + 1, w, 1), one feature per step, batch-first as
        ``nn.LSTM(batch_first=True)`` expects; ``y`` of shape (n - w - h + 1, h). Same dtype as
        ``series``.

    Example::

        >>> X, y = windows(torch.tensor([10., 11., 12., 13., 14.]), window=3)
        >>> X[:, :, 0]
        tensor([[10., 11., 12.],
                [11., 12., 13.]])
        >>> y
        tensor([[13.],
                [14.]])
        >>> X.shape
        torch.Size([2, 3, 1])
    """
    s = torch.as_tensor(series)
    if s.dim() != 1:
        raise ValueError(f"series must be 1-D (n_steps,), got shape {tuple(s.shape)}.")
    window = check_int("window", window, 1)
    horizon = check_int("horizon", horizon, 1)
    n = s.shape[0]
    if window + horizon > n:
        raise ValueError(
            f"window + horizon ({window} + {horizon}) must be at most the series length {n}."
        )
    chunks = s.unfold(0, window + horizon, 1)  # (n - w - h + 1, w + h)
    X = chunks[:, :window].unsqueeze(-1).contiguous()  # (n - w - h + 1, w, 1)
    y = chunks[:, window:].contiguous()  # (n - w - h + 1, h)
    return X, y


def train_test_split_series(series: Tensor, fraction: float = 0.8) -> tuple[Tensor, Tensor]:
    """Chronological split: the first ``round(fraction * n)`` steps train, the rest test.

    Never shuffle a series before splitting: the test part must lie in the future of the
    training part, as it will when the model is used.

        >>> train, test = train_test_split_series(torch.arange(10.), 0.7)
        >>> train
        tensor([0., 1., 2., 3., 4., 5., 6.])
        >>> test
        tensor([7., 8., 9.])
    """
    s = torch.as_tensor(series)
    if s.dim() != 1:
        raise ValueError(f"series must be 1-D (n_steps,), got shape {tuple(s.shape)}.")
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}.")
    n = s.shape[0]
    cut = round(fraction * n)
    if cut < 1 or cut > n - 1:
        raise ValueError(
            f"fraction {fraction} of {n} steps leaves an empty train or test part; "
            "use a longer series or a fraction nearer 0.5."
        )
    return s[:cut], s[cut:]
