r"""Gradient clipping by global norm (Pascanu, Mikolov and Bengio 2013).

.. math::
    \lVert g \rVert = \sqrt{\textstyle\sum_k \lVert g_k \rVert_2^2}, \qquad
    g_k \leftarrow g_k \cdot \min\Big(1, \frac{\tau}{\lVert g \rVert + \epsilon}\Big)

All gradients are scaled by the same factor, so the update keeps its direction and only its
length is capped at ``tau = max_norm``. ``epsilon = 1e-6`` as in ``torch.nn.utils.clip_grad_norm_``.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["global_norm", "clip_by_global_norm"]

EPS = 1e-6


def global_norm(grads: list[Tensor]) -> float:
    """The Euclidean norm of all gradients taken together, as if flattened into one vector."""
    return float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))


def clip_by_global_norm(grads: list[Tensor], max_norm: float) -> tuple[list[Tensor], float]:
    """Rescale ``grads`` so their global norm is at most ``max_norm``; returns (new tensors, norm before).

    The inputs are not modified. Gradients already within the bound come back unchanged.
    """
    if max_norm <= 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    total = global_norm(grads)
    scale = min(1.0, max_norm / (total + EPS))
    return [g * scale for g in grads], total
