r"""A labelled set of variable-length sentences built from the shipped corpus: is it a question?

The sentences of *Alice's Adventures in Wonderland* (``text.load_text``, public domain) are
split at ``.``, ``!`` and ``?``; a sentence is a *question* (label 1) when it ends with ``?``,
and a statement (label 0) otherwise. The final punctuation (and any closing quote after it) is
removed, so the model must tell a question from the words alone, as a sentiment classifier must
tell a review's mood from its words. There are far more statements than questions, so
:func:`question_dataset` keeps every question and an equal number of statements drawn with a
seed: chance level is 50%.

Nothing is downloaded; the labels are computed from the text itself.

Inputs for a model are character ids shifted by one, so that id 0 is free for padding::

    "Who are you"  ->  ids of 'W', 'h', 'o', ' ', ... each + 1, then 0, 0, ... to the batch's longest
"""
from __future__ import annotations

import re
from typing import NamedTuple

import torch
from torch import Tensor

from ._checks import check_int, make_generator
from .text import CharVocab, load_text

__all__ = ["PAD_ID", "Sentences", "question_dataset", "encode_padded"]

PAD_ID = 0
"""The padding id; character ``c`` of the corpus vocabulary has id ``vocab.encode(c) + 1``."""

_SENTENCE = re.compile(r"[^.!?]*[.!?]['\"]?")


class Sentences(NamedTuple):
    """Texts (without their final punctuation) and labels (1 question, 0 statement)."""

    texts: list[str]
    labels: Tensor


def _all_sentences() -> list[tuple[str, int]]:
    text = load_text()
    text = re.sub(r"\s+", " ", text[text.find("CHAPTER I"):])      # the story, one line
    out = []
    for raw in _SENTENCE.findall(text):
        s = raw.strip()
        label = int(s.rstrip("'\"").endswith("?"))
        body = s.rstrip("'\"")[:-1].strip()                           # drop the final . ! or ?
        if body:
            out.append((body, label))
    return out


def question_dataset(*, max_chars: int = 120, seed: int = 0) -> Sentences:
    """Every question of the corpus up to ``max_chars`` characters and as many statements, shuffled.

    >>> data = question_dataset(seed=0)
    >>> len(data.texts) == len(data.labels), float(data.labels.float().mean())
    (True, 0.5)
    """
    max_chars = check_int("max_chars", max_chars, 1)
    pairs = [(s, y) for s, y in _all_sentences() if len(s) <= max_chars]
    questions = [p for p in pairs if p[1] == 1]
    statements = [p for p in pairs if p[1] == 0]
    g = make_generator(seed)
    keep = torch.randperm(len(statements), generator=g)[: len(questions)].tolist()
    chosen = questions + [statements[i] for i in keep]
    order = torch.randperm(len(chosen), generator=g).tolist()
    return Sentences([chosen[i][0] for i in order], torch.tensor([chosen[i][1] for i in order]))


def encode_padded(texts: list[str], vocab: CharVocab) -> tuple[Tensor, Tensor]:
    """Character ids + 1, padded with :data:`PAD_ID` to the longest text: (N, L) int64 and lengths (N,).

    >>> ids, lengths = encode_padded(["ab", "b"], CharVocab("ab"))
    >>> ids, lengths
    (tensor([[1, 2],
            [2, 0]]), tensor([2, 1]))
    """
    if not texts:
        raise ValueError("encode_padded needs at least one text.")
    encoded = [vocab.encode(t) + 1 for t in texts]
    lengths = torch.tensor([len(e) for e in encoded])
    if int(lengths.min()) == 0:
        raise ValueError("every text must have at least one character; got an empty one.")
    ids = torch.full((len(texts), int(lengths.max())), PAD_ID, dtype=torch.long)
    for i, e in enumerate(encoded):
        ids[i, : len(e)] = e
    return ids, lengths
