"""Numbers as the book's text and tables write them: :func:`format_span` (a range of ratios),
:func:`format_table` (a plain-text table)."""
from __future__ import annotations

from typing import Sequence

__all__ = ["format_table", "format_span"]


def format_table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    """A plain-text table, columns padded to their widest cell (floats with 4 significant digits)."""
    def cell(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    if any(len(row) != len(headers) for row in rows):
        raise ValueError(f"every row needs {len(headers)} cells, one per header")
    text = [[str(h) for h in headers]] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(row[j]) for row in text) for j in range(len(headers))]
    numeric = [bool(rows) and all(isinstance(row[j], (int, float)) for row in rows) for j in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)).rstrip()
             for row in text]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_span(ratios: Sequence[float], digits: int = 1) -> str:
    """A range of ratios as the verdicts write it: ``"0.4-0.5x"``, or ``"4.0x"`` when both ends
    agree at ``digits`` decimals. ``format_span([0.42, 0.47])`` is ``"0.4-0.5x"``."""
    values = [float(r) for r in ratios]
    if not values:
        raise ValueError("format_span needs at least one ratio")
    lo, hi = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
    return f"{lo}x" if lo == hi else f"{lo}-{hi}x"

