"""Do the reference cells compute exactly what nn.RNNCell, nn.LSTMCell and nn.GRUCell compute?"""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from course_lib.reference import gru_cell, lstm_cell, lstm_gates, rnn_cell, weights_of

TOL = {torch.float32: 1e-6, torch.float64: 1e-12}
SHAPES = [(1, 1, 1), (1, 3, 5), (3, 4, 5), (7, 2, 1), (2, 16, 8)]  # (batch, input, hidden)


def _close(a, b, dtype):
    assert a.shape == b.shape
    assert (a - b).abs().max().item() <= TOL[dtype]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("N,H_in,H", SHAPES)
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_cell_matches_torch(dtype, N, H_in, H, nonlinearity):
    torch.manual_seed(N * 100 + H)
    cell = nn.RNNCell(H_in, H, nonlinearity=nonlinearity).to(dtype)
    x, h = torch.randn(N, H_in, dtype=dtype), torch.randn(N, H, dtype=dtype)
    with torch.no_grad():
        _close(rnn_cell(x, h, *weights_of(cell)[0], nonlinearity=nonlinearity), cell(x, h), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("N,H_in,H", SHAPES)
def test_lstm_cell_matches_torch(dtype, N, H_in, H):
    torch.manual_seed(N * 100 + H)
    cell = nn.LSTMCell(H_in, H).to(dtype)
    x = torch.randn(N, H_in, dtype=dtype)
    hx = (torch.randn(N, H, dtype=dtype), torch.randn(N, H, dtype=dtype))
    with torch.no_grad():
        h, c = lstm_cell(x, hx, *weights_of(cell)[0])
        h_ref, c_ref = cell(x, hx)
    _close(h, h_ref, dtype)
    _close(c, c_ref, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("N,H_in,H", SHAPES)
def test_gru_cell_matches_torch(dtype, N, H_in, H):
    torch.manual_seed(N * 100 + H)
    cell = nn.GRUCell(H_in, H).to(dtype)
    x, h = torch.randn(N, H_in, dtype=dtype), torch.randn(N, H, dtype=dtype)
    with torch.no_grad():
        _close(gru_cell(x, h, *weights_of(cell)[0]), cell(x, h), dtype)


@pytest.mark.parametrize("Cell,fn", [(nn.RNNCell, rnn_cell), (nn.LSTMCell, lstm_cell), (nn.GRUCell, gru_cell)])
def test_no_state_means_zeros_and_unbatched_input_works(Cell, fn):
    """hx=None starts from zeros, and an unbatched (H_in,) input gives an unbatched state, as in torch."""
    torch.manual_seed(0)
    cell = Cell(3, 4)
    with torch.no_grad():
        for x in (torch.randn(2, 3), torch.randn(3)):
            ours, theirs = fn(x, None, *weights_of(cell)[0]), cell(x)
            ours = ours if isinstance(ours, tuple) else (ours,)
            theirs = theirs if isinstance(theirs, tuple) else (theirs,)
            for a, b in zip(ours, theirs):
                _close(a, b, torch.float32)


@pytest.mark.parametrize("Cell,fn", [(nn.RNNCell, rnn_cell), (nn.LSTMCell, lstm_cell), (nn.GRUCell, gru_cell)])
def test_without_biases(Cell, fn):
    torch.manual_seed(1)
    cell = Cell(3, 4, bias=False)
    x = torch.randn(2, 3)
    with torch.no_grad():
        ours, theirs = fn(x, None, cell.weight_ih, cell.weight_hh), cell(x)
    ours = ours[0] if isinstance(ours, tuple) else ours
    theirs = theirs[0] if isinstance(theirs, tuple) else theirs
    _close(ours, theirs, torch.float32)


def test_rnn_cell_rejects_unknown_nonlinearity():
    with pytest.raises(ValueError, match="'tanh' or 'relu'"):
        rnn_cell(torch.zeros(1, 2), None, torch.zeros(3, 2), torch.zeros(3, 3), nonlinearity="sigmoid")


def _lstm_weights_with_gates(H_in, H, *, i, f, o, g_weight=1.0):
    """Weights whose gates saturate: bias +/-30 pushes a sigmoid to 1 or 0."""
    w_ih = torch.zeros(4 * H, H_in, dtype=torch.float64)
    w_ih[2 * H:3 * H] = g_weight
    w_hh = torch.zeros(4 * H, H, dtype=torch.float64)
    b = torch.zeros(4 * H, dtype=torch.float64)
    b[0:H], b[H:2 * H], b[3 * H:4 * H] = i, f, o
    return w_ih, w_hh, b, torch.zeros_like(b)


@given(c0=st.lists(st.floats(-5, 5), min_size=3, max_size=3),
       x=st.lists(st.floats(-3, 3), min_size=2, max_size=2),
       steps=st.integers(1, 30))
def test_forget_gate_one_and_input_gate_zero_keep_the_cell_state(c0, x, steps):
    """Property: with f = 1 and i = 0 the cell state passes through any number of steps unchanged."""
    w = _lstm_weights_with_gates(2, 3, i=-40.0, f=40.0, o=0.0)
    c = torch.tensor([c0], dtype=torch.float64)
    h = torch.zeros(1, 3, dtype=torch.float64)
    for _ in range(steps):
        h, c = lstm_cell(torch.tensor([x], dtype=torch.float64), (h, c), *w)
    assert torch.allclose(c, torch.tensor([c0], dtype=torch.float64), atol=1e-9, rtol=0)


@given(c0=st.lists(st.floats(-5, 5), min_size=3, max_size=3),
       x=st.lists(st.floats(-3, 3), min_size=2, max_size=2))
def test_forget_gate_zero_and_input_gate_one_replace_the_cell_state(c0, x):
    """Property: with f = 0 and i = 1 the new cell state is the candidate tanh(W_ig x), the old one is gone."""
    w = _lstm_weights_with_gates(2, 3, i=40.0, f=-40.0, o=40.0)
    xt = torch.tensor([x], dtype=torch.float64)
    h, c = lstm_cell(xt, (torch.zeros(1, 3, dtype=torch.float64), torch.tensor([c0], dtype=torch.float64)), *w)
    expected = torch.tanh(xt.sum()).expand(1, 3)
    assert torch.allclose(c, expected, atol=1e-9, rtol=0)
    assert torch.allclose(h, torch.tanh(expected), atol=1e-9, rtol=0)


@given(seed=st.integers(0, 10_000))
def test_lstm_gates_are_in_range_and_recombine_into_the_cell(seed):
    """Property: sigmoid gates lie in (0, 1), the candidate in (-1, 1), and c_t = f c + i g."""
    g = torch.Generator().manual_seed(seed)
    w_ih, w_hh = torch.randn(12, 2, generator=g), torch.randn(12, 3, generator=g)
    x, h, c = torch.randn(4, 2, generator=g), torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    i, f, gg, o = lstm_gates(x, h, w_ih, w_hh)
    for gate in (i, f, o):
        assert ((gate >= 0) & (gate <= 1)).all()
    assert ((gg >= -1) & (gg <= 1)).all()
    h1, c1 = lstm_cell(x, (h, c), w_ih, w_hh)
    assert torch.allclose(c1, f * c + i * gg, atol=1e-6)
    assert torch.allclose(h1, o * torch.tanh(c1), atol=1e-6)


@given(seed=st.integers(0, 10_000), scale=st.floats(0.1, 50.0))
def test_gru_state_stays_inside_the_unit_box(seed, scale):
    """Property: h_t = (1 - z) n + z h_{t-1} is a convex mix of |n| < 1 and |h_{t-1}| < 1, so |h_t| < 1
    for any weights, however large, over many steps."""
    g = torch.Generator().manual_seed(seed)
    w_ih, w_hh = scale * torch.randn(9, 2, generator=g), scale * torch.randn(9, 3, generator=g)
    b_ih, b_hh = scale * torch.randn(9, generator=g), scale * torch.randn(9, generator=g)
    h = torch.zeros(4, 3, dtype=torch.float64)
    for x in torch.randn(20, 4, 2, generator=g):
        h = gru_cell(x.double(), h, w_ih.double(), w_hh.double(), b_ih.double(), b_hh.double())
        assert (h.abs() <= 1).all()
