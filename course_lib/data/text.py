"""A small public-domain corpus, a character vocabulary, and batches for a character model.

The corpus
----------
*Alice's Adventures in Wonderland* by Lewis Carroll (first published 1865), in the
Project Gutenberg "Millennium Fulcrum Edition 2.9" (etext #11) as kept in the Canterbury
Corpus under the name ``alice29.txt``. The work is in the public domain: it was published
in 1865 and its author died in 1898. The file ``alice.txt`` beside this module was copied
from ``tests/testdata/alice29.txt`` of the Brotli source distribution on PyPI
(``brotli-1.2.1.tar.gz``), which carries the Canterbury files as test data; only the line
endings were normalised (CRLF to LF), a trailing end-of-file byte (0x1A) and trailing spaces
removed. It is plain ASCII, about 148 KB, 72 distinct characters. Nothing is downloaded at
run time. See ``CORPUS.md`` for the same note.

Character-level language modelling
----------------------------------
The model reads characters :math:`c_1 \\ldots c_L` and at each step predicts the next one,
so the target sequence is the input shifted by one::

    text   : A l i c e _
    x      : A l i c e        (ids of c_1 .. c_L)
    y      :   l i c e _      (ids of c_2 .. c_{L+1})
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib import resources

import torch
from torch import Tensor

from ._checks import check_int, make_generator

__all__ = ["CORPUS_FILE", "load_text", "CharVocab", "char_batches"]

CORPUS_FILE = "alice.txt"
"""Name of the shipped corpus inside the ``course_lib.data`` package."""


def load_text() -> str:
    """The shipped corpus, *Alice's Adventures in Wonderland*, as one string (``\\n`` line ends).

        >>> text = load_text()
        >>> text[:200].split()[:4]
        ["ALICE'S", 'ADVENTURES', 'IN', 'WONDERLAND']
        >>> len(text)
        148476
    """
    return resources.files(__package__).joinpath(CORPUS_FILE).read_text(encoding="utf-8")


class CharVocab:
    """A character vocabulary: every distinct character of ``text`` gets an id.

    Ids follow sorted character order, so the same text always gives the same vocabulary.

    Attributes:
        chars: the characters, ``chars[i]`` has id ``i``.
        size: number of characters (the ``C`` of an ``nn.Embedding(C, ...)`` or output layer).

    Example::

        >>> vocab = CharVocab("hello")
        >>> vocab.chars, vocab.size
        (['e', 'h', 'l', 'o'], 4)
        >>> vocab.encode("hole")
        tensor([1, 3, 2, 0])
        >>> vocab.decode(torch.tensor([1, 0, 2, 2, 3]))
        'hello'
        >>> vocab.encode("help")
        Traceback (most recent call last):
        ...
        ValueError: character 'p' (position 3) is not in the vocabulary of 4 characters.
    """

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"CharVocab expects a str, got {type(text).__name__}.")
        if not text:
            raise ValueError("CharVocab needs a non-empty text to build its vocabulary from.")
        self.chars: list[str] = sorted(set(text))
        self.size: int = len(self.chars)
        self._stoi = {ch: i for i, ch in enumerate(self.chars)}

    def __repr__(self) -> str:
        return f"CharVocab(size={self.size})"

    def encode(self, s: str) -> Tensor:
        """Ids of the characters of ``s``: a LongTensor of shape (len(s),)."""
        if not isinstance(s, str):
            raise TypeError(f"encode expects a str, got {type(s).__name__}.")
        try:
            ids = [self._stoi[ch] for ch in s]
        except KeyError as err:
            ch = err.args[0]
            raise ValueError(
                f"character {ch!r} (position {s.index(ch)}) is not in the vocabulary "
                f"of {self.size} characters."
            ) from None
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids: Tensor | Iterable[int]) -> str:
        """The string whose ids are ``ids`` (a 1-D integer tensor or a list of ints)."""
        t = torch.as_tensor(ids)
        if t.dim() != 1:
            raise ValueError(f"decode expects a 1-D sequence of ids, got shape {tuple(t.shape)}.")
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"decode expects integer ids, got dtype {t.dtype}.")
        bad = (t < 0) | (t >= self.size)
        if bad.any():
            raise ValueError(
                f"id {int(t[bad][0])} is outside the vocabulary, "
                f"whose ids run from 0 to {self.size - 1}."
            )
        return "".join(self.chars[i] for i in t.tolist())


def char_batches(
    ids: Tensor, batch_size: int, seq_len: int, *, seed: int = 0
) -> Iterator[tuple[Tensor, Tensor]]:
    """One epoch of (x, y) batches for next-character prediction, in a seeded random order.

    The id sequence is cut into non-overlapping chunks: chunk k reads ``x = ids[k*L : k*L+L]``
    and ``y = ids[k*L+1 : k*L+L+1]`` (L = ``seq_len``; y is x shifted by one). The chunks are
    shuffled with a generator seeded by ``seed`` (pass the epoch number for a new order each
    epoch) and grouped ``batch_size`` at a time; a last incomplete batch is dropped.

    Args:
        ids: 1-D integer tensor, e.g. ``vocab.encode(load_text())``.
        batch_size: sequences per batch N (>= 1).
        seq_len: steps per sequence L (>= 1).
        seed: seed for the chunk order.

    Yields:
        ``(x, y)``, both LongTensors of shape (N, L), batch-first.

    Example (10 ids make (10 - 1) // 3 = 3 chunks; batches of 2 keep one batch)::

        >>> batches = list(char_batches(torch.arange(10), batch_size=2, seq_len=3))
        >>> len(batches)
        1
        >>> x, y = batches[0]
        >>> x
        tensor([[6, 7, 8],
                [0, 1, 2]])
        >>> y
        tensor([[7, 8, 9],
                [1, 2, 3]])
    """
    ids = torch.as_tensor(ids)
    if ids.dim() != 1:
        raise ValueError(
            f"ids must be a 1-D tensor of character ids, got shape {tuple(ids.shape)}."
        )
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(f"ids must be integer ids, got dtype {ids.dtype}.")
    batch_size = check_int("batch_size", batch_size, 1)
    seq_len = check_int("seq_len", seq_len, 1)
    n_chunks = (ids.shape[0] - 1) // seq_len
    if n_chunks < batch_size:
        raise ValueError(
            f"{ids.shape[0]} ids give only {n_chunks} chunks of seq_len {seq_len}; "
            f"one batch needs at least batch_size * seq_len + 1 = {batch_size * seq_len + 1} ids."
        )
    g = make_generator(seed)
    ids = ids.long()
    order = torch.randperm(n_chunks, generator=g)  # (n_chunks,)
    offsets = torch.arange(seq_len + 1)  # (L+1,)

    def batches() -> Iterator[tuple[Tensor, Tensor]]:
        for b in range(n_chunks // batch_size):
            starts = order[b * batch_size : (b + 1) * batch_size] * seq_len  # (N,)
            chunk = ids[starts[:, None] + offsets]  # (N, L+1)
            yield chunk[:, :-1], chunk[:, 1:]  # (N, L), (N, L)

    return batches()
