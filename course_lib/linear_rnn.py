r"""Recurrences that train in parallel: linear attention with a matrix state, and minGRU with a scan.

Both are *linear* in their state, with coefficients that depend on the input only, which is
what lets them be computed for all positions at once during training and one step at a time
during generation.

Linear attention (Katharopoulos et al., 2020)
---------------------------------------------
Causal attention with the softmax replaced by a feature map :math:`\phi` (here
:math:`\phi(x) = \operatorname{elu}(x) + 1 > 0`) is

.. math::
    y_t = \frac{\sum_{s \le t} (\phi(q_t) \cdot \phi(k_s))\, v_s}{\sum_{s \le t} \phi(q_t) \cdot \phi(k_s)}
        = \frac{S_t^\top \phi(q_t)}{z_t \cdot \phi(q_t)}, \qquad
    S_t = S_{t-1} + \phi(k_t)\, v_t^\top, \quad z_t = z_{t-1} + \phi(k_t),

a recurrent network whose state is the matrix :math:`S_t` (d_k x d_v) and the vector
:math:`z_t`: the same size after ten tokens as after ten thousand.

minGRU (Feng et al., 2024)
--------------------------
A GRU whose gate and candidate read the input only, in chapter 3's convention
(:math:`z_t` is the share of the *old* state kept)::

    z_t = sigmoid(W_z x_t + b_z)            # (N, H)
    h~_t = g(W_h x_t + b_h)                 # (N, H), g(u) = u + 1/2 for u >= 0, sigmoid(u) below: h~ > 0
    h_t = z_t * h_{t-1} + (1 - z_t) * h~_t

(the paper writes :math:`z_t` for the share of the *new* candidate; only the name differs). With
:math:`a_t = z_t` and :math:`b_t = (1 - z_t)\,\tilde h_t` this is :math:`h_t = a_t h_{t-1} + b_t`,
whose closed form :math:`h_t = A_t\,(h_0 + \sum_{s \le t} b_s / A_s)`, :math:`A_t = \prod_{k \le t} a_k`,
is computed in log space (Heinsen, 2023) so that the running product cannot underflow:

.. math::
    \log h_t = a^*_t + \operatorname{logcumsumexp}_{s \le t}\big(\log b_s - a^*_s\big),
    \qquad a^*_t = \sum_{k \le t} \log a_k ,

with :math:`\log b_0 = \log h_0` and :math:`a^*_0 = 0`. Every term is positive, which is why
:math:`g` keeps the candidate above zero. ``cumsum`` and ``logcumsumexp`` are scans: parallel
hardware evaluates them in :math:`O(\log L)` sequential steps.

Shapes: N batch, L length, H hidden size, d_k / d_v key and value widths.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "linear_attention",
    "linear_attention_recurrent",
    "linear_recurrence_loop",
    "log_space_scan",
    "MinGRU",
    "MinGRURegressor",
]


def _phi(x: Tensor) -> Tensor:
    """The feature map of linear attention, elu(x) + 1 (positive everywhere)."""
    return F.elu(x) + 1.0


def linear_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    r"""Causal linear attention in its parallel (attention-matrix) form.

    q, k: (N, L, d_k); v: (N, L, d_v) -> (N, L, d_v). Position t averages :math:`v_s`,
    :math:`s \le t`, with weights :math:`\phi(q_t) \cdot \phi(k_s)` normalised to sum to one.
    """
    scores = _phi(q) @ _phi(k).transpose(1, 2)                   # (N, L, L): phi(q_t).phi(k_s)
    L = q.shape[1]
    causal = torch.ones(L, L, dtype=torch.bool, device=q.device).tril()
    scores = scores * causal                                      # s <= t only
    return (scores @ v) / scores.sum(-1, keepdim=True)            # (N, L, d_v)


def linear_attention_recurrent(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    r"""The same as :func:`linear_attention`, one position at a time with a matrix state.

    .. math::
        S_t = S_{t-1} + \phi(k_t) v_t^\top, \quad z_t = z_{t-1} + \phi(k_t), \quad
        y_t = \frac{S_t^\top \phi(q_t)}{z_t \cdot \phi(q_t)}
    """
    N, L, d_k = k.shape
    S = q.new_zeros(N, d_k, v.shape[-1])                          # (N, d_k, d_v) the state
    z = q.new_zeros(N, d_k)                                       # (N, d_k) the normaliser
    ys = []
    for q_t, k_t, v_t in zip(_phi(q).unbind(1), _phi(k).unbind(1), v.unbind(1)):
        S = S + k_t[:, :, None] * v_t[:, None, :]                 # (N, d_k, d_v)
        z = z + k_t                                               # (N, d_k)
        ys.append((q_t[:, None, :] @ S)[:, 0] / (z * q_t).sum(-1, keepdim=True))  # (N, d_v)
    return torch.stack(ys, dim=1)                                 # (N, L, d_v)


def linear_recurrence_loop(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """h_t = a_t * h_{t-1} + b_t, one step after another. a, b: (N, L, H); h0: (N, H) -> (N, L, H)."""
    h, hs = h0, []
    for a_t, b_t in zip(a.unbind(1), b.unbind(1)):
        h = a_t * h + b_t                                         # (N, H)
        hs.append(h)
    return torch.stack(hs, dim=1)


def log_space_scan(log_a: Tensor, log_b: Tensor, log_h0: Tensor) -> Tensor:
    r"""All :math:`h_t = a_t h_{t-1} + b_t` at once, for positive a, b, h0 given as logarithms.

    log_a, log_b: (N, L, H); log_h0: (N, H) -> h (N, L, H).
    :math:`\log h_t = a^*_t + \operatorname{logcumsumexp}(\log b - a^*)_t`, with :math:`h_0`
    as the term before the first step (Heinsen, 2023).
    """
    a_star = torch.cumsum(log_a, dim=1)                           # (N, L, H): log A_t
    a_star = F.pad(a_star, (0, 0, 1, 0))                          # (N, L+1, H): log A_0 = 0
    values = torch.cat([log_h0[:, None], log_b], dim=1)           # (N, L+1, H): log h0, log b_1..
    log_h = a_star + torch.logcumsumexp(values - a_star, dim=1)   # (N, L+1, H)
    return torch.exp(log_h[:, 1:])                                # (N, L, H), h_1 .. h_L


def _log_g(u: Tensor) -> Tensor:
    """log g(u) for g(u) = u + 1/2 (u >= 0), sigmoid(u) (u < 0): computed without overflow."""
    return torch.where(u >= 0, torch.log(F.relu(u) + 0.5), -F.softplus(-u))


class MinGRU(nn.Module):
    """One minGRU layer: ``forward`` uses the log-space scan, ``forward_loop`` the plain recurrence.

    Both return every state, (N, L, H), from inputs (N, L, H_in), starting at h_0 = g(0) = 1/2
    unless ``h0`` (N, H) is given (it must be positive).
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.linear = nn.Linear(input_size, 2 * hidden_size)      # W_z | W_h stacked, (2H, H_in)

    def _initial(self, x: Tensor, h0: Tensor | None) -> Tensor:
        if h0 is None:
            return x.new_full((x.shape[0], self.hidden_size), 0.5)
        if (h0 <= 0).any():
            raise ValueError("a minGRU's state is positive (the scan works with its logarithm); "
                             "got an h0 with entries <= 0")
        return h0

    def forward(self, x: Tensor, h0: Tensor | None = None) -> Tensor:
        k, u = self.linear(x).chunk(2, dim=-1)                    # each (N, L, H): gate and candidate logits
        log_z = -F.softplus(-k)                                   # log sigmoid(k): share of h_{t-1} kept
        log_one_minus_z = -F.softplus(k)                          # log (1 - sigmoid(k))
        log_b = log_one_minus_z + _log_g(u)                       # log ((1 - z_t) h~_t)
        return log_space_scan(log_z, log_b, torch.log(self._initial(x, h0)))

    def forward_loop(self, x: Tensor, h0: Tensor | None = None) -> Tensor:
        k, u = self.linear(x).chunk(2, dim=-1)
        z = torch.sigmoid(k)                                      # (N, L, H)
        h_tilde = torch.where(u >= 0, u + 0.5, torch.sigmoid(u))  # g(u) > 0
        return linear_recurrence_loop(z, (1 - z) * h_tilde, self._initial(x, h0))


class MinGRURegressor(nn.Module):
    """Stacked minGRU layers with a linear read-out of the last state, for the adding problem.

    x (N, L, H_in) -> y (N, 1). Between layers: h = LayerNorm(minGRU(h)) + h (after the first),
    as the paper stacks its layers with residual connections and normalisation.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 2, *, seed: int | None = None) -> None:
        super().__init__()
        with torch.random.fork_rng(enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.proj = nn.Linear(input_size, hidden_size)
            self.layers = nn.ModuleList(MinGRU(hidden_size, hidden_size) for _ in range(num_layers))
            self.norms = nn.ModuleList(nn.LayerNorm(hidden_size) for _ in range(num_layers))
            self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.proj(x)                                          # (N, L, H)
        for layer, norm in zip(self.layers, self.norms):
            h = h + norm(layer(h))                                # (N, L, H)
        return self.head(h[:, -1])                                # (N, 1)
