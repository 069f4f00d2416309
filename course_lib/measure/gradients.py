"""Gradients through time: how much of the error signal reaches each earlier step.

Both measures are indexed by the **lag** k = L - t, how many steps before the end of the sequence
``h_t`` was computed:

- :func:`grad_norms_by_lag`      ``||dL/dh_t||`` for every step, from autograd through the reference loop
- :func:`jacobian_norms_by_lag`  ``||ds_L/ds_t||_2``, the product of the step Jacobians ``ds_k/ds_{k-1}``
- :func:`share_at_lag`           how much of either is left k steps back, as a share of lag 0
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from course_lib.models import SequenceModel
from course_lib.train import loss_fn

__all__ = ["grad_norms_by_lag", "jacobian_norms_by_lag", "share_at_lag"]


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

