"""Tests of course_lib.data.transduction: the string-reversal task for sequence-to-sequence models."""
from __future__ import annotations

import doctest

import pytest
import torch

from course_lib.data import transduction
from course_lib.data.transduction import BOS, EOS, PAD, SymbolVocab, reversal_task


def test_every_target_is_its_source_backwards():
    """Is each decoded target the decoded source reversed, for every length drawn?"""
    vocab = SymbolVocab(6)
    batch = reversal_task(300, min_len=1, max_len=9, n_symbols=6, seed=3)
    for src, n, out in zip(batch.src, batch.src_len.tolist(), batch.tgt_out):
        source = vocab.decode(src)
        assert len(source) == n
        assert vocab.decode(out) == source[::-1]


def test_decoder_inputs_are_targets_shifted_right_after_bos():
    """Does tgt_in start with BOS and then read tgt_out one step late, with EOS at step n and PAD after?"""
    batch = reversal_task(200, min_len=2, max_len=7, seed=1)
    N, T = batch.tgt_out.shape
    assert T == batch.src.shape[1] + 1
    assert (batch.tgt_in[:, 0] == BOS).all()
    for i in range(N):
        n = int(batch.src_len[i])
        assert batch.tgt_out[i, n] == EOS
        assert (batch.tgt_in[i, 1 : n + 1] == batch.tgt_out[i, :n]).all()
        assert (batch.tgt_out[i, n + 1 :] == PAD).all() and (batch.tgt_in[i, n + 1 :] == PAD).all()
        assert (batch.src[i, n:] == PAD).all() and (batch.src[i, :n] >= transduction.N_SPECIAL).all()


def test_lengths_cover_the_range_and_the_seed_fixes_the_data():
    """Are lengths drawn from the whole range, the same for the same seed and different for another?"""
    a = reversal_task(500, min_len=3, max_len=8, seed=5)
    b = reversal_task(500, min_len=3, max_len=8, seed=5)
    c = reversal_task(500, min_len=3, max_len=8, seed=6)
    assert set(a.src_len.tolist()) == set(range(3, 9))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a.src, c.src)


@pytest.mark.parametrize("kwargs, error, phrase", [
    ({"n": 0}, ValueError, "n must be an integer >= 1"),
    ({"n": 4, "min_len": 0}, ValueError, "min_len must be an integer >= 1"),
    ({"n": 4, "min_len": 5, "max_len": 3}, ValueError, "max_len must be >= min_len"),
    ({"n": 4, "n_symbols": 27}, ValueError, "at most 26"),
])
def test_bad_arguments_raise_one_clear_error(kwargs, error, phrase):
    """Does a bad argument raise with a sentence that names it?"""
    with pytest.raises(error, match=phrase):
        reversal_task(**kwargs)


def test_vocab_rejects_what_it_cannot_encode_or_decode():
    """Does the vocabulary name a foreign letter, and an id outside it?"""
    vocab = SymbolVocab(3)
    with pytest.raises(ValueError, match="'z' is not one of the 3 symbols"):
        vocab.encode("abz")
    with pytest.raises(ValueError, match="id 9 is outside"):
        vocab.decode(torch.tensor([3, 9]))


def test_docstring_examples_still_run():
    """Do the worked examples in the module's docstrings still describe what the code does?"""
    result = doctest.testmod(transduction, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
