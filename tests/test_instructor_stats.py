"""Unit tests of :mod:`course_lib.instructor.stats`: do difficulty and discrimination follow their textbook
definitions?"""
from __future__ import annotations

import math

import pytest

from course_lib.instructor.stats import item_stats


def test_point_biserial_against_the_textbook_formula():
    """r = (M1 - M0) / s * sqrt(p q), with M1, M0 the mean rest score of those who passed / failed."""
    scores, totals = [1, 1, 0, 0], [3, 2, 2, 0]
    rest = [t - s for s, t in zip(scores, totals)]              # 2, 1, 2, 0
    m1, m0 = (2 + 1) / 2, (2 + 0) / 2
    mean = sum(rest) / 4
    s = math.sqrt(sum((r - mean) ** 2 for r in rest) / 4)
    expected = (m1 - m0) / s * math.sqrt(0.5 * 0.5)
    it = item_stats("p", scores, totals, 1.0)
    assert it.point_biserial == pytest.approx(expected)
    assert it.pass_rate == 0.5 and it.difficulty == 0.5
    assert it.upper_lower == 1.0                                 # top student passed, bottom one did not


def test_partial_credit_counts_in_difficulty_not_in_pass_rate():
    it = item_stats("p", [2, 1, 0, 2], [5, 3, 1, 4], 2.0)
    assert it.pass_rate == 0.5 and it.difficulty == pytest.approx((1 + 0.5 + 0 + 1) / 4)


def test_undefined_discrimination_is_none():
    it = item_stats("p", [1, 1, 1], [3, 2, 1], 1.0)                # everyone passed
    assert it.point_biserial is None and it.pass_rate == 1.0
    assert item_stats("p", [1], [1], 1.0).upper_lower is None       # one student: no two groups
