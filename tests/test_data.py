"""Tests for course_lib.data: the memory tasks, the seasonal series and the text corpus.

Expected values come from hand-worked examples or from independent computations (plain
Python loops, ``math``, ``torch.nn.functional``), never from the functions under test.
"""
from __future__ import annotations

import doctest
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from course_lib import data
from course_lib.data import (
    ADDING_BASELINE_MSE,
    CharVocab,
    adding_problem,
    char_batches,
    copy_task,
    copy_task_baseline,
    copy_task_mask,
    load_text,
    seasonal_series,
    train_test_split_series,
    windows,
)


# --------------------------------------------------------------------------- seeding


@pytest.mark.parametrize(
    "make",
    [
        lambda seed: adding_problem(4, 12, seed=seed),
        lambda seed: copy_task(4, 3, seed=seed),
        lambda seed: (seasonal_series(50, seed=seed),),
        lambda seed: next(char_batches(torch.arange(200), 3, 5, seed=seed)),
    ],
    ids=["adding", "copy", "series", "char_batches"],
)
def test_same_seed_same_data_different_seed_different_data(make):
    """Does a seed fix the data, and does another seed change it?"""
    a, b, c = make(0), make(0), make(1)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not all(torch.equal(p, q) for p, q in zip(a, c))


def test_global_rng_is_neither_used_nor_consulted():
    """Do the generators leave torch's global RNG alone, and ignore torch.manual_seed?"""
    torch.manual_seed(123)
    state = torch.get_rng_state()
    x1, _ = adding_problem(3, 8, seed=5)
    s1 = seasonal_series(20, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(999)
    x2, _ = adding_problem(3, 8, seed=5)
    s2 = seasonal_series(20, seed=5)
    assert torch.equal(x1, x2) and torch.equal(s1, s2)


# --------------------------------------------------------------------------- adding problem


def _check_adding(x: torch.Tensor, y: torch.Tensor, length: int) -> None:
    """Independent check of every sequence with plain Python."""
    half = length // 2
    for xi, yi in zip(x.tolist(), y.tolist()):
        marked = [t for t, (_, m) in enumerate(xi) if m != 0.0]
        assert all(m in (0.0, 1.0) for _, m in xi)
        assert len(marked) == 2, f"expected exactly two markers, found {marked}"
        first, second = marked
        assert first < half <= second, f"markers {marked} are not one per half of {length}"
        assert all(0.0 <= u < 1.0 for u, _ in xi)
        expected = xi[first][0] + xi[second][0]
        assert 0.0 <= yi[0] <= 2.0
        assert yi[0] == pytest.approx(expected, abs=1e-6)


def test_adding_shapes_dtypes_and_targets():
    """Are x (N, L, 2) and y (N, 1) float32, with y the sum of the two marked values?"""
    x, y = adding_problem(50, 9, seed=3)
    assert x.shape == (50, 9, 2) and x.dtype == torch.float32
    assert y.shape == (50, 1) and y.dtype == torch.float32
    _check_adding(x, y, 9)


def test_adding_markers_cover_each_half():
    """Does each marker range over its whole half (first 0..2, second 3..6 for L = 7)?"""
    x, _ = adding_problem(2000, 7, seed=0)
    pos = x[:, :, 1].nonzero()[:, 1].view(-1, 2)  # (N, 2), sorted within each row
    assert set(pos[:, 0].tolist()) == {0, 1, 2}
    assert set(pos[:, 1].tolist()) == {3, 4, 5, 6}


def test_adding_smallest_length_marks_both_steps():
    """With L = 2 the only choice is to mark both steps."""
    x, y = adding_problem(5, 2, seed=0)
    assert torch.equal(x[:, :, 1], torch.ones(5, 2))
    assert torch.allclose(y[:, 0], x[:, 0, 0] + x[:, 1, 0])


def test_adding_baseline_mse_matches_simulation():
    """Is ADDING_BASELINE_MSE the MSE of always guessing 1.0 (1/12 + 1/12 = 1/6)?"""
    assert ADDING_BASELINE_MSE == pytest.approx(1 / 12 + 1 / 12)
    _, y = adding_problem(200_000, 4, seed=1)
    empirical = F.mse_loss(torch.ones_like(y), y).item()
    assert empirical == pytest.approx(ADDING_BASELINE_MSE, abs=0.003)


@given(
    n=st.integers(1, 6),
    length=st.integers(2, 40),
    seed=st.integers(0, 2**63 - 1),
)
def test_adding_property_target_is_marked_sum_in_0_2(n, length, seed):
    """For any size and seed: two markers, one per half, and 0 <= y = marked sum <= 2."""
    x, y = adding_problem(n, length, seed=seed)
    assert x.shape == (n, length, 2) and y.shape == (n, 1)
    _check_adding(x, y, length)


# --------------------------------------------------------------------------- copy task


def test_copy_hand_example_layout():
    """Is the input symbols | lag blanks | delimiter | blanks, and the target blanks | symbols?"""
    x, y = copy_task(2, 4, n_symbols=5, length=3, seed=7)
    T = 3 + 4 + 1 + 3
    assert x.shape == (2, T, 7) and x.dtype == torch.float32
    assert y.shape == (2, T) and y.dtype == torch.int64
    blank, delim = 5, 6
    assert torch.equal(x.sum(-1), torch.ones(2, T))  # one-hot
    assert set(x.unique().tolist()) == {0.0, 1.0}
    ids = x.argmax(-1)
    for row_in, row_out in zip(ids.tolist(), y.tolist()):
        symbols = row_in[:3]
        assert all(0 <= s < 5 for s in symbols)
        assert row_in[3:] == [blank] * 4 + [delim] + [blank] * 3
        assert row_out == [blank] * 8 + symbols


@pytest.mark.parametrize("lag", [0, 1, 17])
def test_copy_targets_reproduce_inputs_after_lag(lag):
    """Does the target at step S + lag + i equal the input symbol read at step i - 1?"""
    S = 6
    x, y = copy_task(30, lag, n_symbols=4, length=S, seed=lag)
    ids = x.argmax(-1)
    for i in range(S):
        assert torch.equal(y[:, S + lag + 1 + i], ids[:, i])


def test_copy_mask_marks_the_recall_steps():
    """Is the mask True exactly on the last `length` steps?"""
    mask = copy_task_mask(2, length=3)
    assert mask.dtype == torch.bool
    assert mask.tolist() == [False] * 6 + [True] * 3
    x, y = copy_task(5, 2, length=3, n_symbols=8)
    assert mask.shape == y.shape[1:]
    assert (y[:, ~mask] == 8).all() and (y[:, mask] < 8).all()


def test_copy_baseline_is_the_memoryless_cross_entropy():
    """Is copy_task_baseline the F.cross_entropy of 'blank, then a uniform guess over symbols'?"""
    K, S, lag = 8, 10, 5
    _, y = copy_task(64, lag, n_symbols=K, length=S, seed=0)
    T = y.shape[1]
    logits = torch.full((64, T, K + 2), -1e4)
    logits[:, : T - S, K] = 0.0  # certain blank while nothing is asked
    logits[:, T - S :, :K] = 0.0  # uniform over the K symbols at recall
    loss = F.cross_entropy(logits.reshape(-1, K + 2), y.reshape(-1)).item()
    assert copy_task_baseline(lag, n_symbols=K, length=S) == pytest.approx(loss, rel=1e-5)
    assert loss == pytest.approx(S * math.log(K) / (2 * S + lag + 1), rel=1e-5)


# --------------------------------------------------------------------------- series


def test_seasonal_series_without_noise_follows_the_formula():
    """With noise 0, is s_t = sin(2 pi t/P) + 0.5 sin(4 pi t/P) + trend * t?"""
    s = seasonal_series(60, period=24, trend=0.01, noise=0.0)
    assert s.shape == (60,) and s.dtype == torch.float32
    expected = [
        math.sin(2 * math.pi * t / 24) + 0.5 * math.sin(4 * math.pi * t / 24) + 0.01 * t
        for t in range(60)
    ]
    assert s.tolist() == pytest.approx(expected, abs=1e-5)


def test_seasonal_series_noise_has_the_requested_spread():
    """Is the noise Gaussian-sized: series minus clean curve has std close to `noise`?"""
    clean = seasonal_series(20_000, noise=0.0)
    noisy = seasonal_series(20_000, noise=0.3, seed=4)
    resid = noisy - clean
    assert resid.mean().abs() < 0.01
    assert resid.std().item() == pytest.approx(0.3, rel=0.03)


def test_windows_hand_example():
    """Do the windows line up: X_i = s[i:i+w], y_i = s[i+w:i+w+h]?"""
    X, y = windows(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), window=2, horizon=2)
    assert X.shape == (3, 2, 1)
    assert X[:, :, 0].tolist() == [[1, 2], [2, 3], [3, 4]]
    assert y.tolist() == [[3, 4], [4, 5], [5, 6]]


@given(n=st.integers(2, 40), window=st.integers(1, 20), horizon=st.integers(1, 5))
def test_windows_property_every_pair_lines_up(n, window, horizon):
    """For any valid sizes, there are n - w - h + 1 pairs and each is a slice of the series."""
    if window + horizon > n:
        return
    s = torch.arange(n, dtype=torch.float32) * 1.5
    X, y = windows(s, window, horizon)
    assert X.shape == (n - window - horizon + 1, window, 1)
    assert y.shape == (n - window - horizon + 1, horizon)
    values = s.tolist()
    for i in range(X.shape[0]):
        assert X[i, :, 0].tolist() == values[i : i + window]
        assert y[i].tolist() == values[i + window : i + window + horizon]


def test_train_test_split_is_chronological():
    """Does the split keep time order: first 80 % train, the rest test?"""
    s = torch.arange(10.0)
    train, test = train_test_split_series(s, 0.8)
    assert train.tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert test.tolist() == [8, 9]


# --------------------------------------------------------------------------- text


def test_corpus_is_shipped_and_of_the_promised_size():
    """Is the corpus a 100-400 KB ASCII text with LF line ends, starting with the title?"""
    text = load_text()
    assert isinstance(text, str)
    assert 100_000 <= len(text.encode("utf-8")) <= 400_000
    assert text.isascii()
    assert "\r" not in text and "\x1a" not in text
    assert text.split()[:4] == ["ALICE'S", "ADVENTURES", "IN", "WONDERLAND"]
    assert text.rstrip().endswith("THE END")


def test_vocab_round_trips_the_whole_corpus():
    """Does decode(encode(text)) give the corpus back, with one id per distinct character?"""
    text = load_text()
    vocab = CharVocab(text)
    assert vocab.size == len(set(text))
    ids = vocab.encode(text)
    assert ids.dtype == torch.int64 and ids.shape == (len(text),)
    assert int(ids.min()) == 0 and int(ids.max()) == vocab.size - 1
    assert vocab.decode(ids) == text


def test_vocab_hand_example():
    """Are ids assigned in sorted character order?"""
    vocab = CharVocab("banana")
    assert vocab.size == 3
    assert vocab.encode("nab").tolist() == [2, 0, 1]
    assert vocab.decode([1, 0, 2]) == "ban"


def test_vocab_unknown_character_is_named():
    """Does encoding an unseen character say which one?"""
    vocab = CharVocab("abc")
    with pytest.raises(ValueError, match=r"character 'z'"):
        vocab.encode("abz")
    with pytest.raises(ValueError, match=r"id 3 is outside the vocabulary"):
        vocab.decode(torch.tensor([0, 3]))


def test_char_batches_y_is_x_shifted_by_one():
    """Is each row a contiguous slice of ids, and y the same slice one step later?"""
    ids = torch.arange(100)
    batches = list(char_batches(ids, batch_size=4, seq_len=5, seed=2))
    assert len(batches) == (99 // 5) // 4  # 19 chunks, 4 full batches
    starts = []
    for x, y in batches:
        assert x.shape == y.shape == (4, 5)
        assert x.dtype == y.dtype == torch.int64
        for row_x, row_y in zip(x.tolist(), y.tolist()):
            assert row_x == list(range(row_x[0], row_x[0] + 5))
            assert row_y == [v + 1 for v in row_x]
            starts.append(row_x[0])
    assert len(set(starts)) == len(starts)  # no chunk repeated within an epoch
    assert all(s % 5 == 0 for s in starts)


def test_char_batches_on_the_corpus_decode_to_neighbouring_text():
    """On real text, does y read as x moved one character along the corpus?"""
    text = load_text()
    vocab = CharVocab(text)
    x, y = next(char_batches(vocab.encode(text), batch_size=2, seq_len=40, seed=0))
    sx, sy = vocab.decode(x[0]), vocab.decode(y[0])
    assert sx[1:] == sy[:-1]
    assert sx + sy[-1] in text


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "call, error, phrase",
    [
        (lambda: adding_problem(4, 1), ValueError, "length must be an integer >= 2"),
        (lambda: adding_problem(0, 5), ValueError, "n must be an integer >= 1"),
        (lambda: adding_problem(4, 5.0), TypeError, "length must be an integer"),
        (lambda: adding_problem(4, 5, seed=-1), ValueError, "seed must be an integer >= 0"),
        (lambda: copy_task(4, -1), ValueError, "lag must be an integer >= 0"),
        (lambda: copy_task(4, 2, n_symbols=0), ValueError, "n_symbols must be an integer >= 1"),
        (lambda: copy_task(4, 2, length=0), ValueError, "length must be an integer >= 1"),
        (lambda: copy_task_mask(-3), ValueError, "lag must be an integer >= 0"),
        (lambda: seasonal_series(0), ValueError, "n_steps must be an integer >= 1"),
        (lambda: seasonal_series(10, period=1), ValueError, "period must be an integer >= 2"),
        (lambda: seasonal_series(10, noise=-0.1), ValueError, "noise must be"),
        (lambda: windows(torch.arange(5.0), 5), ValueError, "window \\+ horizon"),
        (lambda: windows(torch.arange(5.0), 0), ValueError, "window must be an integer >= 1"),
        (lambda: windows(torch.zeros(4, 3), 2), ValueError, "series must be 1-D"),
        (lambda: train_test_split_series(torch.arange(5.0), 1.0), ValueError, "strictly between"),
        (lambda: train_test_split_series(torch.arange(2.0), 0.9), ValueError, "empty train or"),
        (lambda: char_batches(torch.arange(10), 4, 3), ValueError, "at least batch_size"),
        (lambda: char_batches(torch.rand(50), 2, 3), TypeError, "integer ids"),
        (lambda: CharVocab(""), ValueError, "non-empty text"),
    ],
)
def test_bad_arguments_raise_one_clear_error(call, error, phrase):
    """Does a bad argument raise at the call (not at first use) with a sentence naming it?"""
    with pytest.raises(error, match=phrase):
        call()


# --------------------------------------------------------------------------- docs


@pytest.mark.parametrize("module", [data.tasks, data.series, data.text])
def test_docstring_examples_still_run(module):
    """Do the worked examples in the docstrings still describe what the code does?"""
    result = doctest.testmod(module, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
