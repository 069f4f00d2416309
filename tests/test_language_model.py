"""course_lib.language_model: windows for truncated BPTT, the character model, perplexity, baselines, sampling."""
from __future__ import annotations

import math

import pytest
import torch

from course_lib import language_model as lm

torch.set_num_threads(1)


def test_split_is_by_position():
    """Is the held-out part the end of the text, untouched, and the rest the training part?"""
    ids = torch.arange(100)
    train, held = lm.split_ids(ids, 0.1)
    assert torch.equal(train, torch.arange(90)) and torch.equal(held, torch.arange(90, 100))
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        lm.split_ids(ids, 1.0)


def test_corpus_vocabulary_covers_the_held_out_text():
    c = lm.corpus()
    assert c.vocab.size == 72
    assert c.train.shape[0] + c.held_out.shape[0] == 148476
    assert int(c.held_out.max()) < c.vocab.size


def test_stream_windows_continue_row_by_row():
    """Does row n of window k+1 start right where row n of window k ended, with targets shifted by one?"""
    ids = torch.arange(1000) * 7 % 1009                      # distinct values, not sorted
    xs, ys = lm.stream_windows(ids, batch_size=4, seq_len=10)
    K, N, L = xs.shape
    T = (1000 - 1) // 4
    assert (N, L) == (4, 10) and K == T // 10
    pos = {int(v): i for i, v in enumerate(ids)}
    for n in range(N):
        row = torch.cat([xs[k, n] for k in range(K)])
        start = pos[int(row[0])]
        assert start == n * T
        assert torch.equal(row, ids[start:start + K * L])
        assert torch.equal(torch.cat([ys[k, n] for k in range(K)]), ids[start + 1:start + K * L + 1])


def test_hidden_for_budget_gives_the_closest_parameter_count():
    V, budget = 72, 20_000
    for kind in ("rnn", "lstm", "gru"):
        H = lm.hidden_for_budget(kind, V, budget)
        counts = [lm.n_params(lm.char_model(kind, V, h)) for h in (H - 1, H, H + 1)]
        assert abs(counts[1] - budget) == min(abs(c - budget) for c in counts), kind


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_carrying_the_state_is_the_same_as_reading_the_whole_text(kind):
    """Window by window with the state carried gives the logits of one pass over the whole sequence."""
    model = lm.char_model(kind, 9, 6, embed_size=4, seed=1)
    x = torch.randint(0, 9, (2, 12), generator=torch.Generator().manual_seed(0))
    whole, _ = lm.run(model, x)
    first, state = lm.run(model, x[:, :5])
    second, _ = lm.run(model, x[:, 5:], lm.detach_state(state))
    assert torch.allclose(torch.cat([first, second], 1), whole, atol=1e-6)
    reset, _ = lm.run(model, x[:, 5:])
    assert not torch.allclose(reset, whole[:, 5:], atol=1e-3)


def test_cross_entropy_reads_the_text_as_one_stream():
    """Chunked evaluation with the state carried equals the cross-entropy of one forward pass."""
    model = lm.char_model("gru", 9, 6, embed_size=4, seed=2)
    ids = torch.randint(0, 9, (300,), generator=torch.Generator().manual_seed(1))
    logits, _ = lm.run(model, ids[None, :-1])
    want = torch.nn.functional.cross_entropy(logits[0].double(), ids[1:]).item()
    assert lm.cross_entropy(model, ids, chunk=37) == pytest.approx(want, rel=1e-6)
    assert lm.perplexity(want) == pytest.approx(math.exp(want))


def test_baselines():
    """Uniform is log V; the unigram model is the smoothed frequency of each character in the training text."""
    assert lm.uniform_cross_entropy(72) == pytest.approx(math.log(72))
    train = torch.tensor([0, 0, 0, 1])
    held = torch.tensor([2, 0, 1])                           # predicts 0 and 1
    p = torch.tensor([4.0, 2.0, 1.0]) / 7                     # add-one counts
    want = -(math.log(p[0]) + math.log(p[1])) / 2
    assert lm.unigram_cross_entropy(train, held, 3) == pytest.approx(want)


def test_temperature_and_top_k():
    z = torch.tensor([[2.0, 1.0, 0.5, -1.0]])
    assert torch.allclose(lm.next_char_probs(z, 1.0), torch.softmax(z, -1))
    assert torch.allclose(lm.next_char_probs(z, 0.5), torch.softmax(2 * z, -1))
    assert torch.equal(lm.next_char_probs(z, 0.0), torch.tensor([[1.0, 0, 0, 0]]))
    p = lm.next_char_probs(z, 1.0, top_k=2)
    assert torch.allclose(p, torch.cat([torch.softmax(z[:, :2], -1), torch.zeros(1, 2)], 1))
    flat, sharp = lm.next_char_probs(z, 1.5), lm.next_char_probs(z, 0.5)
    assert sharp[0, 0] > flat[0, 0]                          # lower temperature, more mass on the argmax


def test_inverse_transform_draws_each_id_in_proportion_to_its_probability():
    """On a fine grid of u, each id comes up in proportion to its probability (up to one grid step)."""
    z = torch.tensor([0.3, -0.2, 1.1, 0.0, -2.0]).double()
    M = 10_000
    u = (torch.arange(M).double() + 0.5) / M
    ids = lm.sample_ids(z.expand(M, 5), 1.0, None, u)
    counts = torch.bincount(ids, minlength=5).double()
    assert torch.allclose(counts / M, torch.softmax(z, -1), atol=2 / M)
    assert torch.equal(lm.sample_ids(z.expand(3, 5), 0.0, None, u[:3]), torch.full((3,), 2))


def test_training_lowers_the_loss_and_generation_is_reproducible():
    torch.manual_seed(0)
    c = lm.corpus()
    model = lm.char_model("gru", c.vocab.size, 24, embed_size=8, seed=0)
    history = lm.train_lm(model, c.train[:20_000], steps=40, batch_size=8, seq_len=32, lr=1e-2, progress=False)
    assert sum(history.loss[-5:]) / 5 < history.loss[0] - 0.5
    a = lm.generate(model, c.vocab, "Alice ", 30, temperature=1.0, seed=3)
    assert a == lm.generate(model, c.vocab, "Alice ", 30, temperature=1.0, seed=3) and len(a) == 30
    greedy = lm.generate(model, c.vocab, "Alice ", 30, temperature=0.0, seed=1)
    assert greedy == lm.generate(model, c.vocab, "Alice ", 30, temperature=0.0, seed=2)


def test_text_features_tell_quotes_from_apostrophes():
    """Is a ' inside a word (don't) an apostrophe, and a ' after a word the end of the quotation?"""
    text = "`Don't,' she said.\nNo"
    f = lm.text_features(text)
    inside = "".join(ch for ch, q in zip(text, f["inside quotes"]) if q)
    assert inside == "`Don't,"
    assert f["position in line"][text.index("\n") + 1] == 1.0
    assert f["space"].sum() == text.count(" ")


def test_unit_correlations_find_the_unit_that_copies_a_feature():
    gen = torch.Generator().manual_seed(0)
    feature = (torch.rand(500, generator=gen) > 0.5).double()
    hs = torch.randn(500, 6, generator=gen, dtype=torch.float64)
    hs[:, 4] = -3 * feature + 0.01 * hs[:, 4]
    hs[:, 2] = 1.0                                            # a constant unit
    r = lm.unit_correlations(hs, feature)
    assert int(r.abs().argmax()) == 4 and r[4] < -0.99 and r[2] == 0


def test_longest_repeat_and_known_words():
    assert lm.longest_repeat("abcdefg xyz abcdefg", min_len=4) == ("abcdefg", 2)
    assert lm.longest_repeat("abcdefgh", min_len=4) == ("", 0)
    assert lm.share_of_known_words("Alice said hello", {"alice", "said"}) == pytest.approx(2 / 3)
    html = lm.activation_html("a<b", torch.tensor([1.0, 0.0, -1.0]))
    assert "&lt;" in html and "rgb(255,0,0)" in html and "rgb(0,0,255)" in html


def test_samples_table_marks_the_repeat_in_the_first_row_only():
    html = lm.samples_html({"greedy": "ab ab\nab", "T = 1": "ab <x>"}, {"greedy": 1.0, "T = 1": 0.5}, highlight="ab")
    assert html.count("<mark>ab</mark>") == 3 and "&lt;x&gt;" in html and "50%" in html and "&#8629;" in html
