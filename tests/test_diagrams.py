"""course_lib.diagrams: do the book's cell pictures say what the reference code and torch.nn compute?"""
from __future__ import annotations

import inspect
import re
import xml.etree.ElementTree as ET

import pytest
import torch
from torch import nn

from course_lib import diagrams, reference

SVG = "{http://www.w3.org/2000/svg}"


def _labels(svg: str) -> list[str]:
    """Every text element's visible string, with its tspans joined ("h" + "t−1" -> "ht−1")."""
    root = ET.fromstring(svg)
    return ["".join(t.itertext()).replace("\u200b", "") for t in root.iter(f"{SVG}text")]


def _gate_labels(svg: str, names: str) -> set[str]:
    return {label[0] for label in _labels(svg) if re.fullmatch(rf"[{names}]t", label)}


def _split(w, order):
    return dict(zip(order, w.chunk(len(order))))


def test_lstm_structure_matches_nn_lstmcell():
    """Do the gate order and squashing functions the diagrams draw reproduce nn.LSTMCell?"""
    s = diagrams.lstm_structure()
    torch.manual_seed(0)
    cell = nn.LSTMCell(3, 4)
    x, h, c = torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 4)
    w_ih, w_hh = _split(cell.weight_ih, s.order), _split(cell.weight_hh, s.order)
    b_ih, b_hh = _split(cell.bias_ih, s.order), _split(cell.bias_hh, s.order)
    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh}
    gate = {k: act[s.activation[k]](x @ w_ih[k].T + b_ih[k] + h @ w_hh[k].T + b_hh[k]) for k in s.order}
    c_t = gate["f"] * c + gate["i"] * gate["g"]
    h_t = gate["o"] * torch.tanh(c_t)
    h_ref, c_ref = cell(x, (h, c))
    torch.testing.assert_close(c_t, c_ref)
    torch.testing.assert_close(h_t, h_ref)


def test_gru_structure_matches_nn_grucell():
    """Do the GRU gate order and the drawn reset placement reproduce nn.GRUCell?"""
    s = diagrams.gru_structure()
    assert s.reset == "after"
    torch.manual_seed(1)
    cell = nn.GRUCell(3, 4)
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    w_ih, w_hh = _split(cell.weight_ih, s.order), _split(cell.weight_hh, s.order)
    b_ih, b_hh = _split(cell.bias_ih, s.order), _split(cell.bias_hh, s.order)
    r = torch.sigmoid(x @ w_ih["r"].T + b_ih["r"] + h @ w_hh["r"].T + b_hh["r"])
    z = torch.sigmoid(x @ w_ih["z"].T + b_ih["z"] + h @ w_hh["z"].T + b_hh["z"])
    n = torch.tanh(x @ w_ih["n"].T + b_ih["n"] + r * (h @ w_hh["n"].T + b_hh["n"]))
    torch.testing.assert_close((1 - z) * n + z * h, cell(x, h))


def test_structure_is_read_from_the_reference_source(monkeypatch):
    """Would a change of gate order or reset placement in the reference code change the pictures?"""
    lstm_src = inspect.getsource(reference.lstm_gates).replace(
        "W_ii, W_if, W_ig, W_io = _blocks(w_ih, 4)", "W_if, W_ii, W_ig, W_io = _blocks(w_ih, 4)")
    gru_src = inspect.getsource(reference.gru_cell).replace(
        "r_t * affine(h_tm1, W_hn, b_hn)", "affine(r_t * h_tm1, W_hn, b_hn)")
    real = inspect.getsource
    fake = {reference.lstm_gates: lstm_src, reference.gru_cell: gru_src}
    monkeypatch.setattr(diagrams.inspect, "getsource", lambda obj: fake.get(obj) or real(obj))
    assert diagrams.lstm_structure().order == ("f", "i", "g", "o")
    assert diagrams.gru_structure().reset == "before"
    assert "f | i | g | o" in " ".join(_labels(diagrams.lstm_cell().svg))
    assert "before the recurrent product" in diagrams.gru_cell().alt


def test_lstm_cell_is_built_up_gate_by_gate():
    """Does each stage add exactly the parts it names, with the reference's gate order printed?"""
    expected = {"cell_state": set(), "forget": {"f"}, "input": {"f", "i", "g"}, "output": {"f", "i", "g", "o"}}
    for stage, gates in expected.items():
        svg = diagrams.lstm_cell(stage).svg
        assert _gate_labels(svg, "ifgo") == gates, stage
        labels = _labels(svg)
        assert "ct−1" in labels and "ct" in labels, f"{stage}: the cell-state path must be labelled"
    assert "rows of W_ih, W_hh: i | f | g | o" in _labels(diagrams.lstm_cell().svg)
    assert "ht" in _labels(diagrams.lstm_cell("output").svg)
    with pytest.raises(ValueError, match="stage must be one of"):
        diagrams.lstm_cell("peephole")


def _shapes(svg: str) -> set[tuple]:
    """Every box and node of a picture, by position and size."""
    root = ET.fromstring(svg)
    keys = {"rect": ("x", "y", "width", "height"), "circle": ("cx", "cy", "r")}
    return {(tag, *(el.get(k) for k in keys[tag])) for tag in keys for el in root.iter(f"{SVG}{tag}")}


def test_lstm_stages_share_one_layout():
    """Does every stage draw the whole cell in the same place, the parts still to come faint and unlabelled?"""
    stages = {stage: diagrams.lstm_cell(stage).svg for stage in diagrams.LSTM_STAGES}
    layouts = {stage: (ET.fromstring(svg).get("viewBox"), _shapes(svg)) for stage, svg in stages.items()}
    first = layouts["cell_state"]
    assert len(first[1]) >= 10, "the first stage should already show where the four gates and four operations go"
    for stage, layout in layouts.items():
        assert layout == first, f"stage {stage!r} moves, adds or removes parts of the picture"
    for stage, svg in stages.items():
        ghosts = [g for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("class") == "to-come"]
        assert bool(ghosts) == (stage != "output"), f"{stage}: parts to come should be drawn faintly, until the last stage"
        for g in ghosts:
            assert float(g.get("opacity")) <= 0.5
            assert not "".join("".join(t.itertext()) for t in g.iter(f"{SVG}text")).strip(), (
                f"{stage}: a part still to come carries a label")


def test_gru_cell_shows_its_gates_and_reset_placement():
    """Does the GRU picture label r_t, z_t, n_t and put the reset gate where PyTorch does?"""
    d = diagrams.gru_cell()
    assert _gate_labels(d.svg, "rzn") == {"r", "z", "n"}
    assert "after the recurrent product" in d.alt
    assert "before the recurrent product" in diagrams.gru_cell("before").alt
    assert "rows of W_ih, W_hh: r | z | n" in _labels(d.svg)


def test_unrolled_rnn_shares_weights_and_draws_bptt():
    """Does every copy of the unrolled RNN read W_ih, every link carry W_hh, and BPTT run back?"""
    d = diagrams.unrolled_rnn(steps=4)
    labels = _labels(d.svg)
    assert labels.count("Wih") == 4 and labels.count("Whh") == 3
    assert {"x1", "x2", "x3", "xL", "h0"} <= set(labels)
    assert sum(label.startswith("δ") for label in labels) == 3 and "BPTT" in labels
    with pytest.raises(ValueError, match="at least 2"):
        diagrams.unrolled_rnn(steps=1)


@pytest.mark.parametrize("make", [diagrams.unrolled_rnn, diagrams.lstm_cell, diagrams.gru_cell,
                                  diagrams.dependency_paths])
def test_every_diagram_is_accessible_svg(make):
    """Is each picture well-formed SVG whose accessible name is its alt text, with no fixed colours for text?"""
    d = make()
    root = ET.fromstring(d.svg)
    assert root.get("role") == "img" and root.get("aria-label") == d.alt
    assert root.find(f"{SVG}title").text == d.alt
    assert len(d.alt.split()) >= 20, "alt text should say what the picture shows, not just name it"
    assert "background" not in d.svg, "the picture must stay transparent for the dark theme"
