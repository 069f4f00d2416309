"""Tests of course_lib.seq2seq: additive attention, the encoder-decoder, and beam search."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from course_lib.data.transduction import BOS, EOS, PAD, SymbolVocab, reversal_task
from course_lib.seq2seq import (
    IGNORE,
    Seq2Seq,
    Seq2SeqConfig,
    accuracy_by_length,
    additive_attention,
    beam_search,
    reversal,
    sequence_correct,
)


# --------------------------------------------------------------------------- additive attention

def test_additive_attention_matches_the_formula_written_as_loops():
    """Does additive_attention compute e_j = v.tanh(W_q q + W_k k_j), a softmax over j, and sum_j a_j k_j?"""
    g = torch.Generator().manual_seed(0)
    N, S, Hq, Hk, A = 2, 5, 3, 4, 6
    q, keys = torch.randn(N, Hq, generator=g), torch.randn(N, S, Hk, generator=g)
    wq, wk, v = torch.randn(A, Hq, generator=g), torch.randn(A, Hk, generator=g), torch.randn(A, generator=g)
    context, alpha = additive_attention(q, keys, None, wq, wk, v)
    for n in range(N):
        e = [float(v @ torch.tanh(wq @ q[n] + wk @ keys[n, j])) for j in range(S)]
        z = sum(math.exp(x) for x in e)
        a = [math.exp(x) / z for x in e]
        assert alpha[n].tolist() == pytest.approx(a, rel=1e-5)
        expected = sum(a[j] * keys[n, j] for j in range(S))
        assert torch.allclose(context[n], expected, atol=1e-6)


def test_masked_positions_get_exactly_zero_weight_and_the_rest_sum_to_one():
    """With a padding mask, is the weight on padding exactly 0 and the context that of the real positions alone?"""
    g = torch.Generator().manual_seed(1)
    q, keys = torch.randn(3, 4, generator=g), torch.randn(3, 6, 4, generator=g)
    wq, wk, v = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g), torch.randn(5, generator=g)
    lengths = torch.tensor([6, 2, 4])
    mask = torch.arange(6)[None, :] < lengths[:, None]
    context, alpha = additive_attention(q, keys, mask, wq, wk, v)
    assert (alpha[~mask] == 0).all()
    assert torch.allclose(alpha.sum(1), torch.ones(3))
    for n, length in enumerate(lengths.tolist()):
        alone, _ = additive_attention(q[n:n + 1], keys[n:n + 1, :length], None, wq, wk, v)
        assert torch.allclose(context[n], alone[0], atol=1e-6)


# --------------------------------------------------------------------------- the model

def _model(attention: bool, seed: int = 0) -> Seq2Seq:
    return Seq2Seq(Seq2SeqConfig(vocab_size=SymbolVocab(6).size, embed_size=8, hidden_size=12,
                                 attention=attention), seed=seed)


def test_encoder_final_state_is_each_sequences_own_last_state():
    """Is h_n the state after each sequence's last real token, not after the padding?"""
    model = _model(attention=False)
    batch = reversal_task(5, min_len=2, max_len=7, n_symbols=6, seed=2)
    enc = model.encode(batch.src, batch.src_len)
    for i, n in enumerate(batch.src_len.tolist()):
        _, h = model.encoder(model.src_embed(batch.src[i:i + 1, :n]))
        assert torch.allclose(enc.final[i], h[0, 0], atol=1e-6)


@pytest.mark.parametrize("attention", [False, True])
def test_extra_padding_changes_nothing_when_masked(attention):
    """Does padding a batch further leave the logits as they were (the padding mask at work)?"""
    model = _model(attention)
    batch = reversal_task(6, min_len=1, max_len=5, n_symbols=6, seed=3)
    extra = 4
    padded = batch._replace(src=torch.cat([batch.src, torch.full((6, extra), PAD)], dim=1))
    assert torch.allclose(model(batch), model(padded), atol=1e-6)


def test_without_the_mask_attention_looks_at_padding_and_the_output_moves():
    """Is the mask what makes padding harmless: unmasked, does extra padding get weight and change the logits?"""
    model = _model(attention=True)
    batch = reversal_task(6, min_len=1, max_len=5, n_symbols=6, seed=3)
    padded = batch._replace(src=torch.cat([batch.src, torch.full((6, 4), PAD)], dim=1))
    _, alpha = model.teacher_forced(padded, mask_padding=False)
    pad_positions = padded.src == PAD
    assert float(alpha.detach().masked_select(pad_positions[:, None, :]).sum()) > 0
    assert not torch.allclose(model(batch, mask_padding=False), model(padded, mask_padding=False), atol=1e-4)


def test_reversal_task_hides_padding_from_the_loss():
    """Are padded targets IGNORE (skipped by cross_entropy) and everything else the true target?"""
    x, y = reversal(min_len=1, max_len=4).sample(50, 0)
    assert ((y == IGNORE) == (x.tgt_out == PAD)).all()
    assert (y[y != IGNORE] == x.tgt_out[x.tgt_out != PAD]).all()


@pytest.mark.parametrize("attention", [False, True])
def test_greedy_is_beam_search_of_width_one(attention):
    """Does a beam of width 1 find exactly the greedy output, for every sequence of a batch?"""
    model = _model(attention, seed=4)
    batch = reversal_task(8, min_len=1, max_len=6, n_symbols=6, seed=4)
    tokens, _ = model.greedy(batch.src, batch.src_len, max_len=9)
    for i in range(8):
        n = int(batch.src_len[i])
        beam = model.beam(batch.src[i, :n], batch.src_len[i], max_len=9, beam_width=1)
        row = tokens[i].tolist()
        expected = row[: row.index(EOS) + 1] if EOS in row else row
        assert beam == expected


def test_greedy_is_teacher_forcing_fed_its_own_outputs():
    """Fed its own greedy outputs as the decoder inputs, does teacher forcing reproduce the same argmaxes?"""
    model = _model(attention=True, seed=5)
    batch = reversal_task(4, min_len=3, max_len=3, n_symbols=6, seed=5)
    tokens, weights = model.greedy(batch.src, batch.src_len, max_len=4)
    own = batch._replace(tgt_in=torch.cat([torch.full((4, 1), BOS), tokens[:, :-1]], dim=1))
    logits, alpha = model.teacher_forced(own)
    live = torch.ones(4, dtype=torch.bool)
    for t in range(4):
        assert (logits[live, t].argmax(-1) == tokens[live, t]).all()
        assert torch.allclose(alpha[live, t], weights[live, t], atol=1e-6)
        live &= tokens[:, t] != EOS


# --------------------------------------------------------------------------- beam search

def _table_step(table: torch.Tensor):
    """A 'model' whose next-token log-probabilities depend on the step and the last token only."""
    def step(tokens, state):
        t = int(state[0, 0])                                     # every hypothesis is at the same step
        return table[t, tokens], state + 1
    return step


def _exhaustive_best(table: torch.Tensor, eos: int, max_len: int):
    """The most likely output by brute force: every token sequence that ends in EOS or runs to max_len."""
    V = table.shape[2]
    best = (None, -math.inf)
    for length in range(1, max_len + 1):
        for seq in itertools.product(range(V), repeat=length):
            if eos in seq[:-1] or (length < max_len and seq[-1] != eos):
                continue
            last, score = BOS, 0.0
            for t, tok in enumerate(seq):
                score += float(table[t, last, tok])
                last = tok
            if score > best[1]:
                best = (list(seq), score)
    return best


@pytest.mark.parametrize("seed", range(5))
def test_a_wide_enough_beam_finds_the_exhaustive_optimum(seed):
    """With a beam as wide as every hypothesis, is the answer the brute-force most likely sequence?"""
    g = torch.Generator().manual_seed(seed)
    V, max_len = 4, 4                                             # tokens 0..3; BOS = 1, EOS = 2
    table = torch.log_softmax(torch.randn(max_len, V, V, generator=g) * 2, dim=-1)
    tokens, score = beam_search(_table_step(table), torch.zeros(1, 1), bos=BOS, eos=EOS,
                                beam_width=V**max_len, max_len=max_len)[0]
    best_tokens, best_score = _exhaustive_best(table, EOS, max_len)
    assert tokens == best_tokens
    assert score == pytest.approx(best_score, abs=1e-9)


def test_beam_of_two_beats_greedy_on_a_worked_example():
    """Given scores where the best first token leads nowhere good, does width 2 find the better output?"""
    # tokens: 0 'x', 1 BOS, 2 EOS, 3 'y'.  Step 0 prefers x (0.6) to y (0.4); after x every
    # continuation is poor (EOS 0.3), after y EOS is nearly certain (0.9).
    p = torch.full((2, 4, 4), 1e-9)
    p[0, BOS] = torch.tensor([0.6, 1e-9, 1e-9, 0.4])
    p[1, 0] = torch.tensor([0.35, 1e-9, 0.3, 0.35])
    p[1, 3] = torch.tensor([0.05, 1e-9, 0.9, 0.05])
    table = p.log()
    greedy = beam_search(_table_step(table), torch.zeros(1, 1), bos=BOS, eos=EOS, beam_width=1, max_len=2)
    beam = beam_search(_table_step(table), torch.zeros(1, 1), bos=BOS, eos=EOS, beam_width=2, max_len=2)
    assert greedy[0][0][0] == 0                                   # greedy commits to 'x'
    assert beam[0][0] == [3, EOS]                                 # 'y' then EOS: 0.4 * 0.9 = 0.36
    assert beam[0][1] == pytest.approx(math.log(0.4 * 0.9))


@pytest.mark.parametrize("kwargs, phrase", [
    ({"beam_width": 0, "max_len": 3}, "beam_width must be a positive integer"),
    ({"beam_width": 2, "max_len": 0}, "max_len must be a positive integer"),
])
def test_beam_search_rejects_bad_sizes(kwargs, phrase):
    """Does a beam of width 0, or a max_len of 0, raise with a sentence naming it?"""
    with pytest.raises(ValueError, match=phrase):
        beam_search(_table_step(torch.zeros(3, 4, 4)), torch.zeros(1, 1), bos=BOS, eos=EOS, **kwargs)


# --------------------------------------------------------------------------- scoring

def test_sequence_correct_compares_up_to_and_including_eos():
    """Is an output right only if every target token and the EOS match, whatever follows the EOS?"""
    tgt = torch.tensor([[5, 4, EOS, PAD], [3, EOS, PAD, PAD], [6, 6, EOS, PAD]])
    pred = torch.tensor([[5, 4, EOS, 7], [3, 4, EOS, PAD], [6, 6, 6, EOS]])
    assert sequence_correct(pred, tgt).tolist() == [True, False, False]
    assert accuracy_by_length(torch.tensor([True, False, True, True]),
                              torch.tensor([2, 2, 3, 3])) == {2: 0.5, 3: 1.0}


def test_bad_inputs_to_the_encoder_say_what_was_expected():
    """Does a float source, or a length beyond the padding, raise a sentence saying what was expected?"""
    model = _model(attention=True)
    with pytest.raises(ValueError, match="int64 token ids"):
        model.encode(torch.zeros(2, 3), torch.tensor([3, 3]))
    with pytest.raises(ValueError, match="between 1 and S = 3"):
        model.encode(torch.full((2, 3), 4), torch.tensor([3, 4]))
