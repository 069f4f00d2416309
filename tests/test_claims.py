"""Does every verdict rule of the claims chapter give the word its numbers call for?

Each rule of ``course_lib.claims`` gets synthetic results that must give each word it can
give. Several cases are the branch bugs of the chapter's first version (issue 13): a claim-3
verdict that said "the LSTM ahead" without checking it, one that blamed the RNN when the LSTM
failed, and a claim-2 verdict that let extrapolation or training cost overturn accuracy.
"""
from __future__ import annotations

import pytest

from course_lib.claims import (
    FAILS, HOLDS, PARTLY, UNTESTABLE, WORDS, Finding, Verdict, accurate_at_every_length, at_least, below,
    cheaper_at_inference, clipping_fixes_explosion, clipping_fixes_vanishing, cost_flat, exact_ratio,
    extrapolates, fewer_steps, forgets_long_gaps, from_rate, lower_with_spread, lstm_ahead, rnn_as_good,
    signal_kept, similar_rates, spread, untestable, verdict_table_html,
)


def test_verdict_accepts_only_the_four_words():
    """A verdict word outside the four (a typo, a made-up 'mostly holds') is refused."""
    assert WORDS == ("holds", "holds in part", "does not hold", "cannot be tested here")
    with pytest.raises(ValueError, match="must be one of"):
        Verdict("mostly holds", "1x")


@pytest.mark.parametrize("rate, word", [(1.0, HOLDS), (0.6, PARTLY), (0.0, FAILS)])
def test_from_rate(rate, word):
    """A model learns it when every seed does; some seeds is 'in part'; none is 'does not hold'."""
    assert from_rate(rate, "tanh RNN at T=10").word == word


def test_from_rate_short_of_the_claim_never_holds_fully():
    """Runs that tested gaps up to 99 steps cannot make "remembers 100 steps and more" hold outright."""
    assert from_rate(1.0, "LSTM at T=100", short_of_claim=True).word == PARTLY
    assert from_rate(0.0, "LSTM at T=100", short_of_claim=True).word == FAILS


def test_from_rate_refuses_a_count_for_a_share():
    """A count of seeds (3) instead of a share (0.6) is an error, not a verdict."""
    with pytest.raises(ValueError, match=r"share of seeds in \[0, 1\]"):
        from_rate(3, "tanh RNN")


@pytest.mark.parametrize("rates, word", [
    ({"tanh": 0.0, "identity": 0.0}, HOLDS),       # no RNN set-up bridged the gaps
    ({"tanh": 0.0, "identity": 0.8}, PARTLY),      # the classic RNN forgets, an identity-initialised one does not
    ({"tanh": 0.4, "identity": 0.0}, FAILS),       # the classic RNN remembered for some seeds
])
def test_forgets_long_gaps(rates, word):
    """'An RNN forgets 50+ steps back' holds only if no RNN set-up remembers."""
    assert forgets_long_gaps(rates, 100).word == word


@pytest.mark.parametrize("rnn, lstm, word", [
    (1.0, 1.0, HOLDS), (1.0, 0.6, HOLDS), (0.6, 1.0, PARTLY), (0.2, 1.0, FAILS), (0.0, 0.0, PARTLY),
])
def test_rnn_as_good(rnn, lstm, word):
    """Short sequences: the RNN as good as the LSTM. When the LSTM is the one failing the RNN is not blamed."""
    assert rnn_as_good(rnn, lstm, 10).word == word


@pytest.mark.parametrize("rnn, lstm, far, word", [
    (0.0, 1.0, False, HOLDS), (0.6, 1.0, False, HOLDS), (1.0, 1.0, False, FAILS), (1.0, 0.4, False, FAILS),
    (0.0, 1.0, True, HOLDS), (0.6, 1.0, True, PARTLY), (0.0, 0.0, True, FAILS),
])
def test_lstm_ahead(rnn, lstm, far, word):
    """'The LSTM ahead' is checked, never assumed: equal or worse LSTM rates give 'does not hold'."""
    assert lstm_ahead(rnn, lstm, 50, far=far).word == word


def test_accurate_at_every_length():
    """Claim 2's accuracy part reads only the in-distribution solve rates, length by length."""
    losses = {10: 0.004, 50: 0.005, 100: 0.004}
    assert accurate_at_every_length({10: 1.0, 50: 1.0, 100: 1.0}, losses, 0.01).word == HOLDS
    assert accurate_at_every_length({10: 1.0, 50: 1.0, 100: 0.6}, losses, 0.01).word == PARTLY
    assert accurate_at_every_length({10: 1.0, 50: 1.0, 100: 0.0}, losses | {100: 0.16}, 0.01).word == FAILS


@pytest.mark.parametrize("losses, word", [
    ({50: 0.004, 100: 0.006, 400: 0.008}, HOLDS),
    ({50: 0.004, 100: 0.006, 400: 0.7}, PARTLY),
    ({50: 0.004, 100: 0.04, 400: 0.7}, FAILS),
])
def test_extrapolates(losses, word):
    """Extrapolation is judged on the longer lengths only, separately from accuracy."""
    assert extrapolates(losses, 50, 0.01).word == word


@pytest.mark.parametrize("steps_long, word", [(600, HOLDS), (1000, PARTLY), (2000, FAILS)])
def test_cost_flat(steps_long, word):
    """Training cost: 1.5x the steps is flat, up to 3x is 'in part', more 'does not hold'."""
    assert cost_flat(400, steps_long, 10, 100).word == word


def test_claim_2_parts_are_independent():
    """The first version said 'does not hold' for claim 2 from cost and extrapolation while the LSTM
    solved every length: accuracy must hold whatever the other two parts say."""
    accuracy = accurate_at_every_length({10: 1.0, 20: 1.0, 50: 1.0, 100: 1.0},
                                        {10: 0.0038, 20: 0.0052, 50: 0.0045, 100: 0.0042}, 0.01)
    assert accuracy.word == HOLDS
    assert extrapolates({50: 0.0046, 100: 0.041, 400: 0.711}, 50, 0.01).word == FAILS
    assert cost_flat(236, 589, 10, 100).word == PARTLY


@pytest.mark.parametrize("ratios, word", [([3.6, 4.2], HOLDS), ([2.0, 3.5], PARTLY), ([0.6, 0.9], FAILS)])
def test_at_least(ratios, word):
    """'Several times' needs every measured ratio to be at least 3x."""
    assert at_least(ratios, 3.0, "time").word == word


def test_exact_ratio():
    """A parameter ratio the gate count fixes holds only when it is exact for every size."""
    assert exact_ratio([4.0, 4.0], 4.0, "LSTM/RNN").word == HOLDS
    assert exact_ratio([4.0, 3.9], 4.0, "LSTM/RNN").word == PARTLY
    assert exact_ratio([3.9, 3.95], 4.0, "LSTM/RNN").word == FAILS


@pytest.mark.parametrize("gru, word", [
    ({10: 1.0, 100: 0.8}, HOLDS), ({10: 1.0, 100: 0.6}, PARTLY), ({10: 1.0, 100: 0.2}, FAILS),
])
def test_similar_rates(gru, word):
    """'Similar accuracy': one seed in five is within noise, three seeds behind is not."""
    assert similar_rates(gru, {10: 1.0, 100: 1.0}, ("GRU", "LSTM")).word == word


@pytest.mark.parametrize("ratios, word", [
    ({10: 0.7, 100: 0.8}, HOLDS), ({10: 0.95, 100: 1.2}, PARTLY), ({10: 1.1, 100: 1.3}, FAILS),
])
def test_fewer_steps(ratios, word):
    """Fewer steps at every length holds; at some lengths only is 'in part'."""
    assert fewer_steps(ratios, "GRU/LSTM").word == word


@pytest.mark.parametrize("ratios, word", [([0.74, 0.75], HOLDS), ([0.8, 0.95], PARTLY), ([0.9, 1.1], FAILS)])
def test_below(ratios, word):
    """'Cheaper per step': every ratio under the limit holds; only under 1 is 'in part'."""
    assert below(ratios, 0.9, "GRU/LSTM").word == word


@pytest.mark.parametrize("init, trained, word", [(0.8, 0.6, HOLDS), (1e-4, 0.6, PARTLY), (1e-4, 1e-3, FAILS)])
def test_signal_kept(init, trained, word):
    """'Gradients flow back almost unchanged' needs half the signal left at the lag, before and after training."""
    assert signal_kept(init, trained, 50).word == word


@pytest.mark.parametrize("a, b, word", [
    ([0.01, 0.02], [0.03, 0.05], HOLDS), ([0.01, 0.04], [0.03, 0.05], PARTLY), ([0.03, 0.05], [0.01, 0.02], FAILS),
])
def test_lower_with_spread(a, b, word):
    """Separated ranges over seeds hold; only the medians apart is 'in part'."""
    assert lower_with_spread(a, b, ("RNN", "LSTM")).word == word


def test_clipping_fixes_explosion():
    """Clipping fixes explosions only if unclipped runs blow up and clipped ones do not."""
    assert clipping_fixes_explosion([True] * 3, [False] * 3).word == HOLDS
    assert clipping_fixes_explosion([True] * 3, [True, False, False]).word == PARTLY
    assert clipping_fixes_explosion([False] * 3, [False] * 3).word == FAILS


@pytest.mark.parametrize("rate, word", [(1.0, HOLDS), (0.4, PARTLY), (0.0, FAILS)])
def test_clipping_fixes_vanishing(rate, word):
    """If the clipped RNN still fails the long task, clipping did not fix the vanishing gradient."""
    assert clipping_fixes_vanishing(rate, 100).word == word


@pytest.mark.parametrize("recompute, cached, word", [(40.0, 3.0, HOLDS), (40.0, 1.2, PARTLY), (1.1, 0.9, FAILS)])
def test_cheaper_at_inference(recompute, cached, word):
    """The LSTM's inference advantage counts fully only against a transformer with a KV cache."""
    assert cheaper_at_inference(recompute, cached, 1000).word == word


def test_untestable_says_what_would_test_it():
    """'Cannot be tested here' always comes with what would test it."""
    assert untestable("a GPU").word == UNTESTABLE
    with pytest.raises(ValueError, match="what would test"):
        untestable("  ")


def test_spread_text():
    """The median with the range over seeds, the range dropped when it is one value at this precision."""
    assert spread([0.003, 0.004, 0.006]).text() == "0.004 (0.003 to 0.006)"
    assert spread([-0.02, 0.01]).text(".2f") == "-0.01 (-0.02 to 0.01)"      # a negative end stays readable
    assert spread([0.0041, 0.0042]).text() == "0.004"


def test_verdict_table_html_escapes_and_links():
    """The table has one row per finding, escapes text and links each row to its section."""
    rows = [Finding("LSTM <4x> RNN", "003", Verdict(HOLDS, "4.00x"), "claims-parameters"),
            Finding("transformers train faster", "004", untestable("a GPU"), "claims-transformers")]
    table = verdict_table_html(rows)
    assert table.count("<tr>") == 3                              # header + two rows
    assert "LSTM &lt;4x&gt; RNN" in table and "<4x>" not in table
    assert 'href="#claims-parameters"' in table and 'class="verdict-untestable"' in table
    named = verdict_table_html(rows, {"claims-parameters": "Parameters"})
    assert '<a href="#claims-parameters">Parameters</a>' in named and '<a href="#claims-transformers">section</a>' in named
