"""Data for the course: synthetic memory tasks, a seasonal series and a small text corpus.

- ``tasks``   the adding problem and the copy task (long-range memory benchmarks)
- ``series``  a seasonal time series, sliding windows, a chronological split
- ``text``    *Alice's Adventures in Wonderland* (public domain, shipped), a character
              vocabulary and next-character batches
- ``transduction``  string reversal for sequence-to-sequence models (padded, variable lengths)
- ``sentences``  questions and statements from the shipped corpus, for a many-to-one classifier

Everything random takes a ``seed`` and draws from its own ``torch.Generator``.
"""
from .series import seasonal_series, train_test_split_series, windows
from .tasks import (
    ADDING_BASELINE_MSE,
    adding_problem,
    copy_task,
    copy_task_baseline,
    copy_task_mask,
)
from .text import CORPUS_FILE, CharVocab, char_batches, load_text

__all__ = [
    "adding_problem",
    "ADDING_BASELINE_MSE",
    "copy_task",
    "copy_task_mask",
    "copy_task_baseline",
    "seasonal_series",
    "windows",
    "train_test_split_series",
    "load_text",
    "CORPUS_FILE",
    "CharVocab",
    "char_batches",
]
