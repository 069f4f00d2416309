"""The book's figures, drawn from measurements (matplotlib; every function returns the Figure).

Nothing here calls ``plt.show()``: a notebook displays the returned Figure (end the cell with
the call, no semicolon), a script saves it with ``fig.savefig``. A figure made here is closed
in pyplot before it is returned, so it is displayed once and never leaks; a figure drawn into an
``ax`` you pass stays yours. No function changes matplotlib's global settings.

Every figure uses the same colours for the same model kind (:data:`COLORS`) and the same
plain style (:func:`style_axes`), so a reader can compare figures across chapters at a glance.

- :func:`plot_grad_norms`       ``||dL/dh_t||`` (or any per-lag quantity) against time lag, log scale
- :func:`plot_learning_curves`  training loss against step for several runs
- :func:`plot_gates`            an LSTM's gates as heat maps, units x time
- :func:`plot_vs_length`        held-out loss of solve runs against sequence length
- :func:`plot_cost`             any measured cost (seconds, bytes) or score against a size
"""
from __future__ import annotations

import re
from collections import defaultdict
from statistics import median
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

__all__ = ["COLORS", "style_axes", "plot_grad_norms", "plot_learning_curves", "plot_gates",
           "plot_vs_length", "plot_cost"]

#: One colour per model kind, used by every figure.
COLORS = {"rnn": "#c0392b", "lstm": "#2471a3", "gru": "#229954", "transformer": "#7d3c98"}
_NAMES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU", "transformer": "Transformer"}

FIGSIZE = (6.4, 3.6)
LINEWIDTH = 1.8


def style_axes(ax: Axes, *, grid: bool = True) -> None:
    """The house style, applied to one Axes: no top or right spine, a light grid."""
    ax.spines[["top", "right"]].set_visible(False)
    if grid:
        ax.grid(True, alpha=0.3)


def _finish(fig: Figure, ax: Axes | None, owned: bool, legend: bool = True) -> Figure:
    if legend and ax is not None and ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False)
    if owned:
        fig.tight_layout()
        plt.close(fig)          # displayed by the notebook from the return value, not by pyplot
    return fig


def _color(label: str) -> str | None:
    """The colour of the model kind named in ``label`` ("lstm", "LSTM (trained)", ...), else None."""
    low = label.lower()
    for kind in ("transformer", "lstm", "gru", "rnn"):   # "rnn" last: it is not a part of the others
        if kind in low:
            return COLORS[kind]
    return None


def _display(label: str) -> str:
    """``"lstm init"`` -> ``"LSTM init"``: kind names written the way the prose writes them."""
    return re.sub(r"\b(rnn|lstm|gru|transformer)\b", lambda m: _NAMES[m.group(1).lower()], label,
                  flags=re.IGNORECASE)


def _axes(ax: Axes | None) -> tuple[Figure, Axes, bool]:
    """The Axes to draw into: the caller's, or a new figure's (then ``owned`` is True)."""
    if ax is not None:
        style_axes(ax)
        return ax.figure, ax, False
    fig, ax = plt.subplots(figsize=FIGSIZE)
    style_axes(ax)
    return fig, ax, True


def _as_array(values) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=float)


def _log_x_at(ax: Axes, values) -> None:
    """A log x axis labelled at the measured sizes only (10, 20, 50 rather than 2x10^1)."""
    ticks = sorted({float(v) for v in values})
    ax.set_xscale("log")
    ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
    ax.xaxis.set_minor_locator(NullLocator())


def _hlines(ax: Axes, lines: Mapping[str, float] | None) -> None:
    for (label, y), style in zip((lines or {}).items(), ("--", ":", "-.")):
        ax.axhline(y, color="0.4", linestyle=style, linewidth=1.0, label=label)


def plot_grad_norms(norms: Mapping[str, Sequence[float]], *, ax: Axes | None = None,
                    title: str | None = None, ylabel: str = r"$\|\partial L/\partial h_t\|$",
                    log_y: bool = True) -> Figure:
    """One line per entry of ``norms`` (label -> values by lag, entry k = k steps before the end).

    Labels that name a kind (``"rnn"``, ``"LSTM trained"``) take its colour; labels containing
    "init" are dashed, so a model at initialisation and after training pair up visually.
    """
    fig, ax, owned = _axes(ax)
    for label, values in norms.items():
        y = _as_array(values)
        ax.plot(np.arange(len(y)), y, label=_display(label), color=_color(label), linewidth=LINEWIDTH,
                linestyle="--" if "init" in label.lower() else "-")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("time lag k (steps before the end of the sequence)")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return _finish(fig, ax, owned)


def plot_learning_curves(histories: Mapping[str, object], *, smooth: int = 20, log_y: bool = True,
                         x: str = "step", hlines: Mapping[str, float] | None = None,
                         colors: Mapping[str, str] | None = None,
                         ax: Axes | None = None, title: str | None = None) -> Figure:
    """Training loss of several runs (label -> :class:`course_lib.train.History`), smoothed.

    ``x="step"`` or ``x="time"`` (wall seconds). ``hlines`` draws reference levels, e.g.
    ``{"chance": 1/6, "target": 0.01}``. A label naming a kind takes its colour unless
    ``colors`` (label -> colour) says otherwise. A run whose loss overflowed ends where it did.
    """
    if x not in ("step", "time"):
        raise ValueError(f"x must be 'step' or 'time', got {x!r}")
    fig, ax, owned = _axes(ax)
    for label, history in histories.items():
        y = history.smoothed(smooth) if smooth > 1 else history.loss
        xs = np.arange(1, len(y) + 1) if x == "step" else np.asarray(history.time)
        color = (colors or {}).get(label) or _color(label)
        ax.plot(xs, y, label=_display(label), color=color, linewidth=LINEWIDTH)
    _hlines(ax, hlines)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("training step" if x == "step" else "wall time (s)")
    ax.set_ylabel("training loss" + (f" (mean of {smooth} steps)" if smooth > 1 else ""))
    if title:
        ax.set_title(title)
    return _finish(fig, ax, owned)


_GATES = (("i", "input gate $i_t$", "viridis", 0.0, 1.0),
          ("f", "forget gate $f_t$", "viridis", 0.0, 1.0),
          ("g", "candidate $g_t$", "RdBu_r", -1.0, 1.0),
          ("o", "output gate $o_t$", "viridis", 0.0, 1.0))


def plot_gates(record, *, sample: int = 0, units: Sequence[int] | None = None,
               marks: Sequence[int] = (), title: str | None = None) -> Figure:
    """An LSTM's four gates for one sequence as heat maps: one panel per gate, units x time.

    ``record`` is a :class:`course_lib.measure.GateRecord`; ``units`` picks hidden units (rows);
    ``marks`` draws a thin vertical line at chosen steps (e.g. the adding problem's markers).
    Sigmoid gates share the scale 0..1, the candidate ``g_t`` -1..1.
    """
    fig, axes = plt.subplots(4, 1, figsize=(7.0, 7.2), sharex=True)
    for ax, (name, label, cmap, lo, hi) in zip(axes, _GATES):
        values = _as_array(getattr(record, name)[sample])          # (L, H)
        if units is not None:
            values = values[:, list(units)]
        image = ax.imshow(values.T, aspect="auto", cmap=cmap, vmin=lo, vmax=hi,
                          interpolation="nearest", origin="lower")
        for t in marks:
            ax.axvline(t, color="k", linewidth=0.8, alpha=0.7)
        ax.set_ylabel("unit")
        ax.set_title(label, loc="left")
        fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    axes[-1].set_xlabel("time step t")
    if title:
        fig.suptitle(title)
    return _finish(fig, None, owned=True, legend=False)


def plot_vs_length(results: Sequence, *, hlines: Mapping[str, float] | None = None, log_y: bool = True,
                   ylabel: str = "held-out loss", ax: Axes | None = None, title: str | None = None,
                   colors: Mapping[str, str] | None = None) -> Figure:
    """Held-out loss against sequence length, one line per kind (median over seeds, seeds as dots).

    ``results`` are :class:`course_lib.measure.SolveResult` s (anything with ``kind``,
    ``length`` and ``loss``). ``colors`` (kind -> colour) overrides the house colour of a kind.
    """
    groups: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        groups[r.kind][r.length].append(r.loss)
    fig, ax, owned = _axes(ax)
    for kind, by_length in groups.items():
        lengths = sorted(by_length)
        color = (colors or {}).get(kind) or _color(kind)
        ax.plot(lengths, [median(by_length[n]) for n in lengths], marker="o", linewidth=LINEWIDTH,
                label=_display(kind), color=color)
        dots = [(n, v) for n in lengths for v in by_length[n]]
        ax.scatter([d[0] for d in dots], [d[1] for d in dots], s=12, color=color, alpha=0.35)
    _hlines(ax, hlines)
    _log_x_at(ax, [r.length for r in results])
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("sequence length T")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return _finish(fig, ax, owned)


def plot_cost(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, xlabel: str, ylabel: str,
              log_x: bool = False, log_y: bool = True, hlines: Mapping[str, float] | None = None,
              linestyles: Mapping[str, str] | None = None,
              ax: Axes | None = None, title: str | None = None) -> Figure:
    """A measured quantity against a size, one line per entry (label -> (sizes, values)).

    Used for costs (seconds, bytes) and for scores against a size; ``hlines`` as in
    :func:`plot_learning_curves`. A label naming a kind takes its colour; ``linestyles``
    (label -> ``"--"``, ``":"``, ...) tells apart two lines of the same kind, solid otherwise.
    """
    fig, ax, owned = _axes(ax)
    for label, (xs, ys) in series.items():
        ax.plot(_as_array(xs), _as_array(ys), marker="o", linewidth=LINEWIDTH, label=_display(label),
                color=_color(label), linestyle=(linestyles or {}).get(label, "-"))
    _hlines(ax, hlines)
    if log_x:
        _log_x_at(ax, [v for xs, _ in series.values() for v in _as_array(xs)])
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return _finish(fig, ax, owned)
