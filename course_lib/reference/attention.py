r"""Scaled dot-product attention, the core of a transformer, in a few lines.

.. math::
    \operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\Big(\frac{Q K^\top}{\sqrt{d_k}} + M\Big) V

where ``M`` is 0 where a query may look and :math:`-\infty` where it may not (with a causal
mask, query ``t`` sees keys ``0..t`` only). Shapes: ``q`` (..., L, d_k), ``k`` (..., S, d_k),
``v`` (..., S, d_v); the output is (..., L, d_v). Every position is computed at once:
there is no recurrence over time, which is why training parallelises.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["causal_mask", "scaled_dot_product_attention", "self_attention"]


def causal_mask(L: int, S: int | None = None, device=None) -> Tensor:
    """``(L, S)`` boolean mask, True where query ``t`` may attend to key ``s`` (``s <= t``)."""
    S = L if S is None else S
    return torch.ones(L, S, dtype=torch.bool, device=device).tril()


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, causal: bool = False) -> Tensor:
    """Attention of queries ``q`` over keys ``k`` and values ``v``; matches
    ``torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)``."""
    d_k = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)         # (..., L, S)
    if causal:
        allowed = causal_mask(q.shape[-2], k.shape[-2], device=q.device)
        scores = scores.masked_fill(~allowed, float("-inf"))
    weights = scores.softmax(dim=-1)                          # (..., L, S), rows sum to 1
    return weights @ v                                        # (..., L, d_v)


def self_attention(x: Tensor, w_q: Tensor, w_k: Tensor, w_v: Tensor, causal: bool = False) -> Tensor:
    """Single-head self-attention: ``x`` (..., L, D) attends to itself.

    ``Q = x W_q``, ``K = x W_k``, ``V = x W_v`` with ``w_q``/``w_k`` (D, d_k), ``w_v`` (D, d_v).
    """
    return scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v, causal=causal)
