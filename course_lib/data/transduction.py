r"""A toy transduction task for sequence-to-sequence models: reverse a string of symbols.

The source is a string of ``n`` symbols drawn uniformly from a small alphabet; the target is
the same string backwards. Lengths vary from sequence to sequence, so a batch is padded, and
the true lengths travel with it. Reversal is the classic test of an encoder-decoder (Sutskever
et al. 2014 reversed their *source* sentences to help the model): the first symbol the decoder
must write is the last one the encoder read, and the last one it writes is the first one read,
so a model that aligns output step :math:`t` with input step :math:`n - 1 - t` solves it.

Token ids (one vocabulary for source and target)::

    0 PAD   padding after the end of a sequence
    1 BOS   "begin": the decoder's first input
    2 EOS   "end": the decoder's last target
    3 ..    the symbols, shown as the letters a, b, c, ...

Worked example (source "abc", so n = 3; S = 4 is the longest source in the batch)::

    src     : a   b   c   PAD        src_len = 3
    tgt_in  : BOS c   b   a   PAD    what the decoder reads under teacher forcing
    tgt_out : c   b   a   EOS PAD    what it must predict at each step

``tgt_in`` is ``tgt_out`` shifted right by one with BOS in front. Every array is (N, ...) with
the batch first; the target arrays are one step longer than the source arrays (T = S + 1).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ._checks import check_int, make_generator

__all__ = ["PAD", "BOS", "EOS", "N_SPECIAL", "Seq2SeqBatch", "SymbolVocab", "reversal_task"]

PAD, BOS, EOS = 0, 1, 2
N_SPECIAL = 3  #: ids below this are PAD, BOS and EOS; symbol k has id N_SPECIAL + k


class Seq2SeqBatch(NamedTuple):
    """A padded batch of (source, target) pairs. N batch, S longest source, T = S + 1.

    src      (N, S) int64   source ids, PAD after each sequence's end
    src_len  (N,)   int64   true source lengths n (>= 1)
    tgt_in   (N, T) int64   decoder inputs: BOS, then the target, then PAD
    tgt_out  (N, T) int64   decoder targets: the target, then EOS, then PAD
    """

    src: Tensor
    src_len: Tensor
    tgt_in: Tensor
    tgt_out: Tensor


class SymbolVocab:
    """Ids <-> strings for ``n_symbols`` letters ('a', 'b', ...) after the three special ids.

        >>> vocab = SymbolVocab(5)
        >>> vocab.size                      # PAD, BOS, EOS and a..e
        8
        >>> vocab.encode("cab")
        tensor([5, 3, 4])
        >>> vocab.decode(torch.tensor([5, 3, 4, 2, 0]))   # stops at EOS
        'cab'
    """

    def __init__(self, n_symbols: int) -> None:
        n_symbols = check_int("n_symbols", n_symbols, 1)
        if n_symbols > 26:
            raise ValueError(f"n_symbols must be at most 26 (one letter each), got {n_symbols}.")
        self.n_symbols = n_symbols
        self.letters = "abcdefghijklmnopqrstuvwxyz"[:n_symbols]
        self.size = N_SPECIAL + n_symbols

    def __repr__(self) -> str:
        return f"SymbolVocab(n_symbols={self.n_symbols})"

    def encode(self, s: str) -> Tensor:
        """Ids (len(s),) of the letters of ``s``."""
        bad = [ch for ch in s if ch not in self.letters]
        if bad:
            raise ValueError(f"character {bad[0]!r} is not one of the {self.n_symbols} symbols "
                             f"{self.letters!r}.")
        return torch.tensor([N_SPECIAL + self.letters.index(ch) for ch in s], dtype=torch.long)

    def decode(self, ids: Tensor) -> str:
        """The letters of ``ids`` up to the first EOS or PAD (BOS is skipped)."""
        out = []
        for i in torch.as_tensor(ids).tolist():
            if i in (EOS, PAD):
                break
            if i == BOS:
                continue
            if not N_SPECIAL <= i < self.size:
                raise ValueError(f"id {i} is outside this vocabulary of {self.size} ids.")
            out.append(self.letters[i - N_SPECIAL])
        return "".join(out)


def reversal_task(
    n: int, *, min_len: int = 1, max_len: int = 10, n_symbols: int = 10, seed: int = 0
) -> Seq2SeqBatch:
    """``n`` random strings of ``min_len`` to ``max_len`` symbols (uniform lengths), and their reversals.

    Args:
        n: number of pairs N (>= 1).
        min_len, max_len: shortest and longest source length (1 <= min_len <= max_len).
        n_symbols: size of the alphabet (1 to 26).
        seed: seed of the ``torch.Generator`` that draws the lengths and the symbols.

    Returns:
        a :class:`Seq2SeqBatch`, padded to the longest source drawn (S) and S + 1.

    Example::

        >>> batch = reversal_task(2, min_len=2, max_len=4, n_symbols=5, seed=0)
        >>> vocab = SymbolVocab(5)
        >>> [vocab.decode(s) for s in batch.src], batch.src_len
        (['dade', 'cd'], tensor([4, 2]))
        >>> [vocab.decode(t) for t in batch.tgt_out]
        ['edad', 'dc']
        >>> batch.tgt_in[1], batch.tgt_out[1]
        (tensor([1, 6, 5, 0, 0]), tensor([6, 5, 2, 0, 0]))
    """
    n = check_int("n", n, 1)
    min_len = check_int("min_len", min_len, 1)
    max_len = check_int("max_len", max_len, 1)
    if max_len < min_len:
        raise ValueError(f"max_len must be >= min_len, got min_len={min_len} and max_len={max_len}.")
    vocab = SymbolVocab(n_symbols)
    g = make_generator(seed)
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=g)               # (N,)
    S = int(lengths.max())
    symbols = torch.randint(0, vocab.n_symbols, (n, S), generator=g) + N_SPECIAL  # (N, S)
    steps = torch.arange(S)                                                       # (S,)
    valid = steps[None, :] < lengths[:, None]                                     # (N, S)
    src = torch.where(valid, symbols, torch.full_like(symbols, PAD))              # (N, S)
    # reversed target: position t holds source position n - 1 - t
    back = (lengths[:, None] - 1 - steps[None, :]).clamp(min=0)                   # (N, S)
    rev = torch.where(valid, src.gather(1, back), torch.full_like(src, PAD))      # (N, S)
    tgt_out = torch.cat([rev, torch.full((n, 1), PAD)], dim=1)                    # (N, T)
    tgt_out[torch.arange(n), lengths] = EOS
    tgt_in = torch.cat([torch.full((n, 1), BOS), rev], dim=1)                     # (N, T)
    return Seq2SeqBatch(src, lengths, tgt_in, tgt_out)
