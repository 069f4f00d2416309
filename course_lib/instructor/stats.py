"""Item analysis of one assignment: how hard each part was and how well it separates the class.

For part ``j`` with score ``x_ij`` of student ``i`` out of ``m_j`` points and total ``T_i``:

- pass rate      ``P_j = (1/n) Σ_i [x_ij = m_j]``, the share with full marks;
- difficulty     ``p_j = (1/n) Σ_i x_ij / m_j``, the mean share of the points (classical test theory's
                 "item difficulty": high means easy);
- discrimination ``r_j = corr([x_ij = m_j], T_i - x_ij)``, the point-biserial correlation of passing
                 the part with the score on the *rest* of the assignment (so the part does not
                 correlate with itself); and ``D_j = P_j(upper) - P_j(lower)``, the pass rate of the
                 top 27% of the class by total minus that of the bottom 27% (Kelley's groups).

A part that strong students fail as often as weak ones (``r_j`` or ``D_j`` near 0 or negative) is
worth a look: a misleading instruction, a test that checks something else, or a topic not taught.
With a handful of students these numbers are noisy; ``None`` where they are undefined (everyone
passed, or everyone has the same rest score).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["ItemStats", "item_stats", "GROUP_SHARE"]

GROUP_SHARE = 0.27


@dataclass(frozen=True)
class ItemStats:
    part: str
    n: int
    pass_rate: float
    difficulty: float
    point_biserial: float | None
    upper_lower: float | None


def item_stats(part: str, scores: list[float], totals: list[float], max_score: float) -> ItemStats:
    """Pass rate, difficulty and discrimination of one part; ``scores[i]`` and ``totals[i]`` are student ``i``'s."""
    x = np.asarray(scores, dtype=float)
    t = np.asarray(totals, dtype=float)
    n = len(x)
    if n == 0:
        return ItemStats(part, 0, math.nan, math.nan, None, None)
    passed = (x >= max_score - 1e-9).astype(float)
    rest = t - x
    r = None
    if passed.std() > 0 and rest.std() > 0:
        r = float(np.corrcoef(passed, rest)[0, 1])
    d = None
    g = max(1, int(round(GROUP_SHARE * n)))
    if 2 * g <= n:
        order = np.argsort(-t, kind="stable")           # highest total first
        d = float(passed[order[:g]].mean() - passed[order[-g:]].mean())
    return ItemStats(part, n, float(passed.mean()), float((x / max_score).mean()) if max_score else math.nan, r, d)
