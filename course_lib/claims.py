"""Verdicts on the articles' claims, computed from measured numbers (book chapter 9).

A claim gets one of four verdict words, never typed by hand on the page:

- ``holds``                  the measurement agrees with the claim's words
- ``holds in part``          it agrees with part of them, or for some seeds or sizes only
- ``does not hold``          it disagrees
- ``cannot be tested here``  nothing this book can run tests it; the reason names what would

Every rule below is a small function of plain numbers (solve rates, losses, ratios), so that the
tests in ``tests/test_claims.py`` can feed it synthetic results and pin each word. A rule returns
a :class:`Verdict`: the word and the one number behind it, written for the page's table.

Solve rates are shares of seeds, in [0, 1]: 1.0 means every seed reached the target.
Where a claim is a comparison of two spreads of numbers where lower is better (held-out losses
over seeds), :func:`lower_with_spread` decides: separated ranges hold, separated medians hold
in part.
"""
from __future__ import annotations

import html
import statistics
from dataclasses import dataclass
from typing import Mapping, Sequence

__all__ = [
    "HOLDS", "PARTLY", "FAILS", "UNTESTABLE", "WORDS", "Verdict", "Finding", "Spread", "spread",
    "from_rate", "forgets_long_gaps", "rnn_as_good", "lstm_ahead", "accurate_at_every_length",
    "extrapolates", "cost_flat", "at_least", "exact_ratio", "similar_rates", "fewer_steps",
    "below", "signal_kept", "lower_with_spread", "clipping_fixes_explosion", "clipping_fixes_vanishing",
    "cheaper_at_inference", "untestable", "verdict_table_html",
]

HOLDS = "holds"
PARTLY = "holds in part"
FAILS = "does not hold"
UNTESTABLE = "cannot be tested here"
WORDS = (HOLDS, PARTLY, FAILS, UNTESTABLE)


@dataclass(frozen=True)
class Verdict:
    """A verdict word and the one number (as text) it rests on."""

    word: str
    number: str

    def __post_init__(self) -> None:
        if self.word not in WORDS:
            raise ValueError(f"a verdict word must be one of {WORDS}, got {self.word!r}")


@dataclass(frozen=True)
class Finding:
    """One row of the verdict table: what an article claims, where, and what the page found."""

    claim: str          # the claim, in the book's words
    article: str        # which seed article(s) make it, e.g. "003"
    verdict: Verdict
    section: str        # the page's anchor of the section that tests it


@dataclass(frozen=True)
class Spread:
    """The median of some values over seeds and their range."""

    median: float
    lo: float
    hi: float

    def text(self, fmt: str = ".3f") -> str:
        """``"0.004 (0.003 to 0.006)"``: the median and, in brackets, the range over seeds."""
        if f"{self.lo:{fmt}}" == f"{self.hi:{fmt}}":
            return f"{self.median:{fmt}}"
        return f"{self.median:{fmt}} ({self.lo:{fmt}} to {self.hi:{fmt}})"


def spread(values: Sequence[float]) -> Spread:
    """Median, minimum and maximum of ``values`` (one per seed)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("spread needs at least one value")
    return Spread(statistics.median(values), min(values), max(values))


def _rate(rate: float, name: str = "rate") -> float:
    rate = float(rate)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{name} must be a share of seeds in [0, 1], got {rate!r}")
    return rate


def _share(rate: float) -> str:
    return f"{rate:.0%}"


def from_rate(rate: float, what: str, *, short_of_claim: bool = False) -> Verdict:
    """A claim that a model learns something: every seed did -> holds, some -> in part, none -> does not.

    ``what`` names the runs in the number, e.g. ``"tanh RNN at T=10"``. ``short_of_claim=True``
    says the runs tested less than the claim promises (gaps up to 99 steps for "100 steps and
    more"): then even every seed solving gives only "holds in part".
    """
    rate = _rate(rate)
    word = HOLDS if rate == 1.0 else FAILS if rate == 0.0 else PARTLY
    if short_of_claim and word == HOLDS:
        word = PARTLY
    return Verdict(word, f"{what}: {_share(rate)} of seeds solved")


def forgets_long_gaps(rates: Mapping[str, float], length: int) -> Verdict:
    """"An RNN forgets what came that far back", judged on every RNN set-up tried (``label -> rate``).

    No set-up solved any seed -> holds; the first (the classic RNN) solved none but another did
    -> in part (the forgetting depends on how the RNN is set up, not on the architecture alone);
    the first solved some seeds -> does not hold.
    """
    if not rates:
        raise ValueError("forgets_long_gaps needs the solve rate of at least one RNN set-up")
    checked = {label: _rate(r, label) for label, r in rates.items()}
    first = next(iter(checked))
    number = ", ".join(f"{label} {_share(r)}" for label, r in checked.items()) + f" of seeds solved T={length}"
    if all(r == 0.0 for r in checked.values()):
        return Verdict(HOLDS, number)
    if checked[first] == 0.0:
        return Verdict(PARTLY, number)
    return Verdict(FAILS, number)


def rnn_as_good(rnn_rate: float, lstm_rate: float, length: int) -> Verdict:
    """"On short sequences an RNN does as well as an LSTM": compare solve rates at ``length``.

    The RNN solves at least as many seeds -> holds; at least half the LSTM's share -> in part;
    fewer -> does not hold. (Both failing everywhere is "as well" in the letter only: in part.)
    """
    rnn, lstm = _rate(rnn_rate, "rnn_rate"), _rate(lstm_rate, "lstm_rate")
    number = f"T={length}: RNN {_share(rnn)}, LSTM {_share(lstm)} of seeds solved"
    if rnn == lstm == 0.0:
        return Verdict(PARTLY, number)
    if rnn >= lstm:
        return Verdict(HOLDS, number)
    if rnn >= lstm / 2:
        return Verdict(PARTLY, number)
    return Verdict(FAILS, number)


def lstm_ahead(rnn_rate: float, lstm_rate: float, length: int, *, far: bool = False) -> Verdict:
    """"The LSTM is ahead of the RNN at ``length``" (``far=True``: "far ahead"), from solve rates.

    Ahead: the LSTM solves more seeds. Far ahead: by at least 60 points (3 seeds in 5).
    Ahead but not far, when far is claimed -> in part; not ahead -> does not hold.
    """
    rnn, lstm = _rate(rnn_rate, "rnn_rate"), _rate(lstm_rate, "lstm_rate")
    number = f"T={length}: LSTM {_share(lstm)}, best RNN {_share(rnn)} of seeds solved"
    if lstm <= rnn:
        return Verdict(FAILS, number)
    if far and lstm - rnn < 0.6:
        return Verdict(PARTLY, number)
    return Verdict(HOLDS, number)


def accurate_at_every_length(rates: Mapping[int, float], losses: Mapping[int, float], target: float) -> Verdict:
    """"No deterioration on longer contexts", accuracy part: trained at each length, does it solve it?

    ``rates`` and ``losses`` (median held-out loss) by length. Every length solved by every seed
    -> holds; the longest length solved by some seed -> in part; the longest by none -> does not hold.
    """
    if not rates or set(rates) != set(losses):
        raise ValueError("rates and losses need the same, non-empty set of lengths")
    checked = {T: _rate(r, f"rate at T={T}") for T, r in rates.items()}
    longest = max(checked)
    number = (f"median MSE {min(losses.values()):.4f}-{max(losses.values()):.4f} "
              f"(T={min(checked)}-{longest}, target {target:g})")
    if all(r == 1.0 for r in checked.values()):
        return Verdict(HOLDS, number)
    if checked[longest] > 0.0:
        return Verdict(PARTLY, number)
    return Verdict(FAILS, number)


def extrapolates(losses: Mapping[int, float], trained_at: int, target: float) -> Verdict:
    """Extrapolation part: a model trained at ``trained_at`` scored (median MSE) at longer lengths.

    Below ``target`` at every longer length -> holds; at the shortest longer one only -> in part;
    not even there -> does not hold.
    """
    longer = sorted(T for T in losses if T > trained_at)
    if not longer:
        raise ValueError(f"extrapolates needs losses at lengths above trained_at={trained_at}")
    number = (f"trained at T={trained_at}: median MSE {losses[longer[0]]:.3f} at T={longer[0]}, "
              f"{losses[longer[-1]]:.3f} at T={longer[-1]}")
    if all(losses[T] < target for T in longer):
        return Verdict(HOLDS, number)
    if losses[longer[0]] < target:
        return Verdict(PARTLY, number)
    return Verdict(FAILS, number)


def cost_flat(steps_short: float, steps_long: float, short: int, long: int) -> Verdict:
    """Training-cost part: median steps to solve at ``long`` over those at ``short``.

    At most 1.5x -> holds (flat); at most 3x -> in part; more -> does not hold.
    """
    if steps_short <= 0:
        raise ValueError(f"steps_short must be positive, got {steps_short!r}")
    ratio = steps_long / steps_short
    number = f"{ratio:.1f}x the steps at T={long} as at T={short}"
    return Verdict(HOLDS if ratio <= 1.5 else PARTLY if ratio <= 3 else FAILS, number)


def at_least(ratios: Sequence[float], several: float, what: str, *, some: float = 1.5) -> Verdict:
    """"Several times": every ratio at least ``several`` -> holds; every ratio at least ``some``
    -> in part; otherwise does not hold. ``what`` names the ratio in the number."""
    values = [float(r) for r in ratios]
    if not values:
        raise ValueError("at_least needs at least one ratio")
    lo, hi = min(values), max(values)
    number = f"{what} {lo:.1f}x" if f"{lo:.1f}" == f"{hi:.1f}" else f"{what} {lo:.1f}-{hi:.1f}x"
    return Verdict(HOLDS if lo >= several else PARTLY if lo >= some else FAILS, number)


def exact_ratio(ratios: Sequence[float], expected: float, what: str) -> Verdict:
    """A ratio the architecture fixes: equal to ``expected`` (to 1e-9) for every size -> holds,
    for some -> in part, for none -> does not hold."""
    values = [float(r) for r in ratios]
    if not values:
        raise ValueError("exact_ratio needs at least one ratio")
    hits = [abs(r - expected) < 1e-9 for r in values]
    number = f"{what} {min(values):.2f}x" + ("" if max(values) - min(values) < 5e-3 else f"-{max(values):.2f}x")
    return Verdict(HOLDS if all(hits) else PARTLY if any(hits) else FAILS, number)


def similar_rates(a: Mapping[int, float], b: Mapping[int, float], names: tuple[str, str], *,
                  tolerance: float = 0.2) -> Verdict:
    """"Similar accuracy": solve rates of ``a`` and ``b`` at every length within ``tolerance``
    (one seed in five) -> holds; ``a`` worse by more than twice that somewhere -> does not hold;
    in between -> in part."""
    if not a or set(a) != set(b):
        raise ValueError("similar_rates needs the same, non-empty set of lengths for both")
    gaps = {T: _rate(a[T]) - _rate(b[T]) for T in a}
    worst = min(gaps.values())
    number = ", ".join(f"T={T}: {_share(a[T])} vs {_share(b[T])}" for T in sorted(a)) + f" ({names[0]} vs {names[1]})"
    if all(abs(g) <= tolerance + 1e-9 for g in gaps.values()):
        return Verdict(HOLDS, number)
    if worst < -2 * tolerance - 1e-9:
        return Verdict(FAILS, number)
    return Verdict(PARTLY, number)


def fewer_steps(ratios: Mapping[int, float], what: str) -> Verdict:
    """"Trains in fewer steps": median-steps ratio (this model / the other) below 0.9 at every
    length -> holds; below 1 at some -> in part; at none -> does not hold."""
    if not ratios:
        raise ValueError("fewer_steps needs at least one ratio")
    values = list(ratios.values())
    lo, hi = f"{min(values):.2f}", f"{max(values):.2f}"
    number = f"{what} {lo}x the steps" if lo == hi else f"{what} {lo}-{hi}x the steps"
    if all(r < 0.9 for r in values):
        return Verdict(HOLDS, number)
    if any(r < 1 for r in values):
        return Verdict(PARTLY, number)
    return Verdict(FAILS, number)


def below(ratios: Sequence[float], limit: float, what: str) -> Verdict:
    """"Cheaper" or "fewer": every ratio below ``limit`` -> holds; every ratio below 1 -> in part;
    otherwise does not hold. ``what`` names the ratio in the number."""
    values = [float(r) for r in ratios]
    if not values:
        raise ValueError("below needs at least one ratio")
    lo, hi = min(values), max(values)
    number = f"{what} {lo:.2f}x" if f"{lo:.2f}" == f"{hi:.2f}" else f"{what} {lo:.2f}-{hi:.2f}x"
    return Verdict(HOLDS if hi < limit else PARTLY if hi < 1 else FAILS, number)


def signal_kept(share_init: float, share_trained: float, lag: int, *, almost: float = 0.5) -> Verdict:
    """"Gradients flow back almost unchanged": the share of ``||dL/dh_t||`` left at ``lag`` (median
    over models) at least ``almost`` both at initialisation and after training -> holds; in one of
    the two -> in part; in neither -> does not hold."""
    kept = [share_init >= almost, share_trained >= almost]
    number = f"share left at lag {lag}: {share_init:.0e} at init, {share_trained:.0e} trained"
    return Verdict(HOLDS if all(kept) else PARTLY if any(kept) else FAILS, number)


def lower_with_spread(a: Sequence[float], b: Sequence[float], names: tuple[str, str], what: str = "MSE") -> Verdict:
    """"``a`` does better than ``b``" where lower is better (losses over seeds).

    Every value of ``a`` below every value of ``b`` -> holds; the median of ``a`` below the median
    of ``b`` -> in part (the ranges overlap); otherwise does not hold.
    """
    sa, sb = spread(a), spread(b)
    number = f"{what} {names[0]} {sa.text('.4f')}, {names[1]} {sb.text('.4f')}"
    if sa.hi < sb.lo:
        return Verdict(HOLDS, number)
    if sa.median < sb.median:
        return Verdict(PARTLY, number)
    return Verdict(FAILS, number)


def clipping_fixes_explosion(unclipped_diverged: Sequence[bool], clipped_diverged: Sequence[bool]) -> Verdict:
    """Clipping and exploding gradients: every unclipped run overflowed and no clipped run did
    -> holds; fewer clipped than unclipped runs overflowed -> in part; otherwise does not hold
    (including when no unclipped run overflowed: then there was nothing to fix)."""
    if not unclipped_diverged or not clipped_diverged:
        raise ValueError("clipping_fixes_explosion needs runs with and without clipping")
    free, clipped = sum(map(bool, unclipped_diverged)), sum(map(bool, clipped_diverged))
    number = (f"overflowed: {free}/{len(unclipped_diverged)} runs without clipping, "
              f"{clipped}/{len(clipped_diverged)} with")
    if free == len(unclipped_diverged) and clipped == 0:
        return Verdict(HOLDS, number)
    if clipped < free:
        return Verdict(PARTLY, number)
    return Verdict(FAILS, number)


def clipping_fixes_vanishing(clipped_rnn_rate: float, length: int) -> Verdict:
    """"Clipping is a fix for vanishing gradients": the sweep clips every run, so the clipped tanh
    RNN's solve rate at ``length`` answers it. Every seed solved -> holds; some -> in part; none
    -> does not hold."""
    rate = _rate(clipped_rnn_rate)
    word = HOLDS if rate == 1.0 else FAILS if rate == 0.0 else PARTLY
    return Verdict(word, f"tanh RNN clipped at 1, T={length}: {_share(rate)} of seeds solved")


def cheaper_at_inference(ratio_recompute: float, ratio_cached: float, context: int) -> Verdict:
    """"An LSTM is cheaper per generated step than a transformer", at context ``context``.

    Ratios are transformer time / LSTM time per new output: against a transformer with a KV
    cache above 1.5 -> holds; only against one that recomputes the prefix -> in part; neither
    -> does not hold.
    """
    number = (f"context {context}: transformer {ratio_recompute:.1f}x (recomputing), "
              f"{ratio_cached:.1f}x (KV cache) the LSTM's time")
    if ratio_cached > 1.5:
        return Verdict(HOLDS, number)
    if ratio_recompute > 1.5:
        return Verdict(PARTLY, number)
    return Verdict(FAILS, number)


def untestable(what_would_test: str) -> Verdict:
    """A claim nothing here can test; ``what_would_test`` says what would (shown as the number)."""
    if not what_would_test.strip():
        raise ValueError("say what would test the claim: a GPU, a dataset, a device...")
    return Verdict(UNTESTABLE, what_would_test)


_WORD_CLASS = {HOLDS: "holds", PARTLY: "partly", FAILS: "fails", UNTESTABLE: "untestable"}


def verdict_table_html(findings: Sequence[Finding], titles: Mapping[str, str] | None = None) -> str:
    """The page's verdict table as HTML: claim, article, verdict, the number behind it, and a link
    to the section (``#anchor``), named by ``titles[anchor]`` (else "section"). Every cell is
    escaped; the verdict cell carries a class named after its word (``verdict-holds``,
    ``verdict-partly``, ``verdict-fails``, ``verdict-untestable``)."""
    titles = titles or {}
    rows = []
    for f in findings:
        word = f.verdict.word
        rows.append(
            "<tr>"
            f"<td>{html.escape(f.claim)}</td>"
            f"<td>{html.escape(f.article)}</td>"
            f'<td class="verdict-{_WORD_CLASS[word]}"><strong>{html.escape(word)}</strong></td>'
            f"<td>{html.escape(f.verdict.number)}</td>"
            f'<td><a href="#{html.escape(f.section, quote=True)}">{html.escape(titles.get(f.section, "section"))}</a></td>'
            "</tr>")
    head = "".join(f'<th scope="col">{h}</th>' for h in ("Claim", "Article", "Verdict", "The number behind it", "Tested in"))
    return (f'<table class="claims-verdicts"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")
