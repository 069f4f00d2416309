"""Do the reference layers agree with nn.RNN, nn.LSTM and nn.GRU in every calling mode?"""
import pytest
import torch
from torch import nn

from course_lib.reference import fast_gru, fast_lstm, fast_rnn, gru, lstm, rnn, weights_of

TOL = {torch.float32: 1e-6, torch.float64: 1e-12}
CASES = [  # (batch, length, input, hidden, layers)
    (1, 1, 1, 1, 1), (1, 5, 3, 4, 1), (3, 1, 2, 5, 2), (4, 7, 3, 5, 2), (2, 12, 6, 1, 3), (5, 9, 1, 8, 1),
]
LAYERS = {"rnn": (nn.RNN, rnn), "lstm": (nn.LSTM, lstm), "gru": (nn.GRU, gru)}


def _flatten(result):
    output, state = result
    return [output, *state] if isinstance(state, tuple) else [output, state]


def _assert_same(ours, theirs, dtype):
    for a, b in zip(_flatten(ours), _flatten(theirs), strict=True):
        assert a.shape == b.shape
        assert (a - b).abs().max().item() <= TOL[dtype]


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("N,L,H_in,H,layers", CASES)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_layer_matches_torch(kind, dtype, N, L, H_in, H, layers, batch_first, with_state):
    Module, fn = LAYERS[kind]
    torch.manual_seed(N + 10 * L + 100 * H)
    net = Module(H_in, H, num_layers=layers, batch_first=batch_first).to(dtype)
    x = torch.randn(*((N, L) if batch_first else (L, N)), H_in, dtype=dtype)
    hx = None
    if with_state:
        h0 = torch.randn(layers, N, H, dtype=dtype)
        hx = (h0, torch.randn(layers, N, H, dtype=dtype)) if kind == "lstm" else h0
    with torch.no_grad():
        _assert_same(fn(x, hx, weights_of(net), batch_first=batch_first), net(x, hx), dtype)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_unbatched_sequence(kind):
    Module, fn = LAYERS[kind]
    torch.manual_seed(3)
    net = Module(3, 4, num_layers=2)
    x = torch.randn(6, 3)
    with torch.no_grad():
        _assert_same(fn(x, None, weights_of(net)), net(x), torch.float32)


def test_relu_rnn_matches_torch():
    torch.manual_seed(4)
    net = nn.RNN(3, 4, nonlinearity="relu", num_layers=2)
    x = torch.randn(5, 2, 3)
    with torch.no_grad():
        _assert_same(rnn(x, None, weights_of(net), nonlinearity="relu"), net(x), torch.float32)


FAST = {"rnn": (nn.RNN, fast_rnn), "lstm": (nn.LSTM, fast_lstm), "gru": (nn.GRU, fast_gru)}


@pytest.mark.parametrize("kind", sorted(FAST))
@pytest.mark.parametrize("N,L,H_in,H,layers", CASES)
@pytest.mark.parametrize("batch_first", [False, True])
def test_fast_layers_match_torch(kind, N, L, H_in, H, layers, batch_first):
    Module, fn = FAST[kind]
    torch.manual_seed(5)
    net = Module(H_in, H, num_layers=layers, batch_first=batch_first).double()
    x = torch.randn(*((N, L) if batch_first else (L, N)), H_in, dtype=torch.float64)
    h0 = torch.randn(layers, N, H, dtype=torch.float64)
    hx = (h0, torch.randn(layers, N, H, dtype=torch.float64)) if kind == "lstm" else h0
    with torch.no_grad():
        _assert_same(fn(x, hx, weights_of(net), batch_first=batch_first), net(x, hx), torch.float64)
        _assert_same(fn(x, None, weights_of(net), batch_first=batch_first), net(x), torch.float64)


@pytest.mark.parametrize("kind", sorted(FAST))
def test_fast_layers_unbatched_and_without_bias(kind):
    Module, fn = FAST[kind]
    torch.manual_seed(7)
    net = Module(3, 4, num_layers=2, bias=False)
    x = torch.randn(6, 3)
    with torch.no_grad():
        _assert_same(fn(x, None, weights_of(net)), net(x), torch.float32)


@pytest.mark.parametrize("kind", sorted(FAST))
def test_fast_layers_gradients_match_torch(kind):
    """With autograd on, the fast layers take the recording loop: same outputs, same weight and input grads."""
    Module, fn = FAST[kind]
    torch.manual_seed(6)
    net = Module(3, 4, num_layers=2).double()
    x = torch.randn(8, 2, 3, dtype=torch.float64, requires_grad=True)
    expected_out = net(x)[0]
    expected_out.square().sum().backward()
    expected = [p.grad.clone() for p in net.parameters()] + [x.grad.clone()]
    net.zero_grad()
    x.grad = None
    out = fn(x, None, weights_of(net))[0]
    assert out.requires_grad
    torch.testing.assert_close(out, expected_out, rtol=0, atol=1e-12)
    out.square().sum().backward()
    for got, want in zip([p.grad for p in net.parameters()] + [x.grad], expected):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(FAST))
def test_fast_layers_without_autograd_leave_the_initial_state_alone(kind):
    """The inference loops work in place; the caller's h0 (and c0) must come back untouched."""
    Module, fn = FAST[kind]
    torch.manual_seed(8)
    net = Module(3, 4, num_layers=2)
    x = torch.randn(5, 2, 3)
    h0 = torch.randn(2, 2, 4)
    hx = (h0, torch.randn(2, 2, 4)) if kind == "lstm" else h0
    before = [t.clone() for t in (hx if kind == "lstm" else (hx,))]
    with torch.no_grad():
        out, state = fn(x, hx, weights_of(net))
        want_out, want_state = net(x, hx)
    for t, b in zip(hx if kind == "lstm" else (hx,), before):
        assert torch.equal(t, b)
    _assert_same((out, state), (want_out, want_state), torch.float32)
    assert not out.requires_grad


READABLE = {"rnn": rnn, "lstm": lstm, "gru": gru}


@pytest.mark.parametrize("kind", sorted(FAST))
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")   # torch.func's own imports
def test_fast_layers_work_under_torch_func_transforms(kind):
    """vmap and jvp (forward-mode AD) take the recording loop, whose ops they support, and agree with
    the readable layer: the in-place inference loop must not be used there."""
    Module, fn = FAST[kind]
    torch.manual_seed(9)
    weights = weights_of(Module(3, 4, num_layers=2).double().requires_grad_(False))
    xs = torch.randn(5, 6, 2, 3, dtype=torch.float64)                # 5 independent (L, N, H_in) inputs
    mapped = torch.func.vmap(lambda x: fn(x, None, weights)[0])(xs)
    torch.testing.assert_close(mapped, torch.stack([fn(x, None, weights)[0] for x in xs]), rtol=0, atol=1e-12)
    tangent = torch.randn_like(xs[0])
    _, ours = torch.func.jvp(lambda x: fn(x, None, weights)[0], (xs[0],), (tangent,))
    _, theirs = torch.func.jvp(lambda x: READABLE[kind](x, None, weights)[0], (xs[0],), (tangent,))
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(FAST))
def test_fast_layers_explain_an_initial_state_of_the_wrong_shape(kind):
    Module, fn = FAST[kind]
    net = Module(3, 4, num_layers=2)
    x = torch.randn(5, 1, 3)                                             # batch 1
    wrong_batch = torch.zeros(2, 3, 4)                                   # batch 3
    hx = (wrong_batch, wrong_batch) if kind == "lstm" else wrong_batch
    with torch.no_grad(), pytest.raises(ValueError, match=r"expected an initial state of shape \(2, 1, 4\)"):
        fn(x, hx, weights_of(net))
    one_layer = torch.zeros(1, 1, 4)
    hx = (one_layer, one_layer) if kind == "lstm" else one_layer
    with pytest.raises(ValueError, match=r"got \(1, 1, 4\)"):
        fn(x, hx, weights_of(net))


def test_weights_of_rejects_what_it_cannot_represent():
    with pytest.raises(ValueError, match="unidirectional"):
        weights_of(nn.LSTM(2, 3, bidirectional=True))
    with pytest.raises(TypeError, match="nn.RNN, nn.LSTM, nn.GRU"):
        weights_of(nn.Linear(2, 3))


def test_bad_input_rank_and_state_count_are_explained():
    net = nn.GRU(2, 3, num_layers=2)
    with pytest.raises(ValueError, match=r"\(L, N, H_in\)"):
        gru(torch.zeros(2, 3, 4, 2), None, weights_of(net))
    with pytest.raises(ValueError, match="initial state for 2 layers"):
        gru(torch.zeros(4, 1, 2), torch.zeros(1, 1, 3), weights_of(net))
