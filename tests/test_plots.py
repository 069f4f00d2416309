"""Tests for course_lib.plots: each figure function returns a Figure with the expected artists."""
import matplotlib
import pytest
import torch
from matplotlib.figure import Figure

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from course_lib.measure import GateRecord, SolveResult  # noqa: E402
from course_lib.plots import (  # noqa: E402
    COLORS, plot_cost, plot_gates, plot_grad_norms, plot_learning_curves, plot_vs_length,
)
from course_lib.train import History  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _data_lines(ax):
    """Lines drawn from data (reference levels drawn with axhline span the axes: x in axes coords)."""
    return [line for line in ax.get_lines() if line.get_label() and not line.get_label().startswith("_")]


def test_grad_norms_one_line_per_model_on_a_log_axis():
    norms = {"rnn init": torch.logspace(0, -8, 30), "lstm init": torch.ones(30), "lstm trained": [1.0] * 30}
    fig = plot_grad_norms(norms)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 3
    assert ax.get_yscale() == "log"
    assert ax.get_lines()[0].get_color() == COLORS["rnn"]
    assert ax.get_lines()[0].get_linestyle() == "--" and ax.get_lines()[2].get_linestyle() == "-"
    assert list(ax.get_lines()[0].get_xdata()) == list(range(30))


def test_learning_curves_one_line_per_run_plus_reference_levels():
    histories = {kind: History(loss=[1.0 / (k + 1) for k in range(50)], time=[0.1 * k for k in range(50)])
                 for kind in ("rnn", "lstm", "gru")}
    fig = plot_learning_curves(histories, hlines={"chance": 1 / 6, "target": 0.01})
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 5
    assert [line.get_label() for line in ax.get_lines()][:3] == ["RNN", "LSTM", "GRU"]
    fig_time = plot_learning_curves(histories, x="time", smooth=1)
    assert list(fig_time.axes[0].get_lines()[0].get_xdata()) == histories["rnn"].time
    with pytest.raises(ValueError, match="x must be"):
        plot_learning_curves(histories, x="epoch")


def test_gates_heat_map_one_image_per_gate():
    N, L, H = 2, 12, 6
    rec = GateRecord(*(torch.rand(N, L, H) for _ in range(6)))
    fig = plot_gates(rec, sample=1, units=[0, 2, 4], marks=[3, 9])
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 4
    assert images[0].get_array().shape == (3, L)       # units x time
    assert images[0].get_array()[1, 5] == pytest.approx(rec.i[1, 5, 2].item())
    assert images[2].get_clim() == (-1.0, 1.0)         # the candidate g_t is a tanh


def test_vs_length_median_line_per_kind():
    results = [SolveResult(kind, T, seed, 10, 1.0, 1.0, loss, loss < 0.01)
               for kind, base in (("rnn", 0.1), ("lstm", 0.001))
               for T in (10, 50, 100) for seed, loss in ((0, base), (1, 2 * base), (2, 3 * base))]
    fig = plot_vs_length(results, hlines={"target": 0.01})
    ax = fig.axes[0]
    lines = _data_lines(ax)
    assert len(lines) == 3
    assert list(lines[0].get_xdata()) == [10, 50, 100]
    assert list(lines[0].get_ydata()) == pytest.approx([0.2, 0.2, 0.2])   # median of 0.1, 0.2, 0.3


def test_cost_one_line_per_series():
    fig = plot_cost({"lstm": ([10, 100], [1e-3, 1e-2]), "transformer": ([10, 100], [2e-3, 3e-2])},
                    xlabel="context length", ylabel="seconds", log_x=True)
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 2 and ax.get_xscale() == "log"
    assert ax.get_lines()[1].get_color() == COLORS["transformer"]


def test_cost_tells_two_lines_of_one_kind_apart_by_linestyle():
    """Recomputing and cached transformers share the kind's colour: is the one given a style dashed, the other solid?"""
    series = {"transformer (recompute)": ([10, 100], [1e-3, 1e-1]),
              "transformer (KV cache)": ([10, 100], [1e-3, 2e-3])}
    fig = plot_cost(series, xlabel="context length", ylabel="seconds",
                    linestyles={"transformer (KV cache)": "--"})
    solid, dashed = fig.axes[0].get_lines()
    assert solid.get_color() == dashed.get_color() == COLORS["transformer"]
    assert (solid.get_linestyle(), dashed.get_linestyle()) == ("-", "--")
    assert dashed.get_label() == "Transformer (KV cache)"


def test_plots_draw_into_a_given_axes():
    fig, ax = plt.subplots()
    assert plot_grad_norms({"gru": [1.0, 0.5]}, ax=ax) is fig
    assert len(ax.get_lines()) == 1


def test_returned_figures_are_closed_in_pyplot_and_leave_settings_alone():
    """A notebook shows the returned Figure once; pyplot keeps no reference and rcParams are untouched."""
    before = dict(matplotlib.rcParams)
    open_before = plt.get_fignums()
    fig = plot_grad_norms({"lstm": [1.0, 0.1]})
    assert fig.number not in plt.get_fignums() and plt.get_fignums() == open_before
    assert dict(matplotlib.rcParams) == before
    fig.canvas.draw()                                   # a closed figure still renders


def test_a_figure_drawn_into_given_axes_stays_open():
    fig, ax = plt.subplots()
    plot_cost({"rnn": ([1, 2], [3, 4])}, xlabel="x", ylabel="y", ax=ax)
    assert fig.number in plt.get_fignums()


def test_learning_curve_colours_can_be_given_per_label():
    histories = {"no clipping": History(loss=[1.0, 2.0]), "clipped": History(loss=[1.0, 0.5])}
    fig = plot_learning_curves(histories, smooth=1, colors={"no clipping": "#e67e22"})
    assert matplotlib.colors.to_hex(fig.axes[0].get_lines()[0].get_color()) == "#e67e22"


def test_log_length_axis_is_labelled_at_the_measured_lengths():
    results = [SolveResult("gru", T, 0, 10, 1.0, 1.0, 0.01, True) for T in (10, 20, 50)]
    ax = plot_vs_length(results).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10", "20", "50"]
