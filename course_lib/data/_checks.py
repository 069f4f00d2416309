"""Argument checks shared by the data modules: one clear sentence per mistake."""
from __future__ import annotations

import numbers

import torch

__all__ = ["check_int", "make_generator"]


def check_int(name: str, value: object, minimum: int) -> int:
    """Return ``value`` as an ``int`` if it is an integer ``>= minimum``, else raise.

    >>> check_int("length", 5, 2)
    5
    >>> check_int("length", 1, 2)
    Traceback (most recent call last):
    ...
    ValueError: length must be an integer >= 2, got 1.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}.")
    return int(value)


def make_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (the global RNG is never touched)."""
    seed = check_int("seed", seed, 0)
    g = torch.Generator()
    g.manual_seed(seed)
    return g
