r"""A many-to-one text classifier with the practitioner's options, in PyTorch and in Keras 3.

::

    ids (N, L), lengths (N,)  ->  Embedding  ->  LSTM (stacked, bidirectional, packed)
                              ->  last state of each direction of the top layer  ->  Dropout  ->  Linear  ->  logits (N, C)

Padding id 0 (:data:`course_lib.data.sentences.PAD_ID`). With ``pack=True`` the LSTM reads
each sequence only up to its length (``pack_padded_sequence``), so its final state is the state
after the last real character, and a backward direction starts there. ``pack=False`` runs over
the padding as if it were text, which is what the chapter shows going wrong.

:func:`keras_classifier` builds the unidirectional model the Keras way: ``Embedding(mask_zero=True)``
makes a mask that the LSTM obeys (the state is carried unchanged over masked steps), which gives
the same final state as packing; :func:`course_lib.convert.keras_to_torch` moves its weights over.

Shapes: N batch, L padded length, E embedding size, H hidden size, C classes.
"""
from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from course_lib.data.sentences import PAD_ID

__all__ = ["TextClassifier", "keras_classifier"]


class TextClassifier(nn.Module):
    """Embedding -> LSTM -> final state(s) -> dropout -> Linear; ``forward((ids, lengths))`` -> (N, C)."""

    def __init__(self, vocab_size: int, *, embed_size: int = 16, hidden_size: int = 32,
                 num_classes: int = 2, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, pack: bool = True, seed: int | None = None) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.pack = pack
        self.directions = 2 if bidirectional else 1
        with torch.random.fork_rng(enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.embed = nn.Embedding(vocab_size, embed_size, padding_idx=PAD_ID)
            # dropout= applies between stacked layers (to every layer's output but the last)
            self.lstm = nn.LSTM(embed_size, hidden_size, num_layers, batch_first=True,
                                bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
            self.drop = nn.Dropout(dropout)
            self.head = nn.Linear(self.directions * hidden_size, num_classes)

    def final_state(self, ids: Tensor, lengths: Tensor) -> Tensor:
        """The top layer's last state of each direction, concatenated: (N, directions * H)."""
        if ids.dim() != 2 or ids.dtype != torch.int64:
            raise ValueError(f"ids must be int64 character ids (N, L), got {ids.dtype} of shape {tuple(ids.shape)}")
        if lengths.shape != ids.shape[:1] or int(lengths.min()) < 1 or int(lengths.max()) > ids.shape[1]:
            raise ValueError(f"lengths must hold one length per sequence, each between 1 and "
                             f"L = {ids.shape[1]}; got {lengths.tolist()}")
        z = self.embed(ids)                                       # (N, L, E)
        if self.pack:
            z = pack_padded_sequence(z, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(z)                                # h_n (layers * directions, N, H)
        top = h_n[-self.directions:]                              # (directions, N, H): forward, backward
        return torch.cat(list(top), dim=-1)                       # (N, directions * H)

    def forward(self, x: tuple[Tensor, Tensor]) -> Tensor:
        ids, lengths = x
        return self.head(self.drop(self.final_state(ids, lengths)))  # (N, C)


def keras_classifier(vocab_size: int, *, embed_size: int = 16, hidden_size: int = 32,
                     num_classes: int = 2) -> Any:
    """The unidirectional :class:`TextClassifier` written in Keras 3: masking instead of packing.

    Returns a built ``keras.Sequential`` of ``Embedding(mask_zero=True)``, ``LSTM`` and ``Dense``
    (logits), in the order :func:`course_lib.convert.keras_to_torch` expects for each part.
    """
    os.environ.setdefault("KERAS_BACKEND", "torch")              # must be set before the first import
    import keras

    model = keras.Sequential([
        keras.layers.Embedding(vocab_size, embed_size, mask_zero=True),
        keras.layers.LSTM(hidden_size),
        keras.layers.Dense(num_classes),
    ])
    model.build((None, None))
    return model
