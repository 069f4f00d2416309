"""Tests for course_lib.convert: PyTorch <-> reference <-> Keras 3 LSTM and GRU weights.

The oracle is always one of the two libraries running its own layer: converted weights must
make Keras and torch (and the reference layers) compute the same outputs and final states.
"""
import numpy as np
import pytest
import torch
from torch import nn

from course_lib import convert
from course_lib.reference import LayerWeights, gru, lstm, weights_of

keras = pytest.importorskip("keras")

N, L, H_IN, H = 3, 7, 4, 5
TORCH = {"lstm": nn.LSTM, "gru": nn.GRU}
KERAS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
REFERENCE = {"lstm": lstm, "gru": gru}
ATOL = 1e-5


def _x(seed: int = 0) -> torch.Tensor:
    return torch.randn(N, L, H_IN, generator=torch.Generator().manual_seed(seed))  # (N, L, H_in)


def _torch_net(kind: str, num_layers: int, seed: int = 0, **kw) -> nn.Module:
    torch.manual_seed(seed)  # torch's default init draws every bias at random too
    return TORCH[kind](H_IN, H, num_layers=num_layers, batch_first=True, **kw)


def _keras_stack(kind: str, num_layers: int, seed: int | None = None, **kw) -> list:
    """Built Keras layers returning sequences and states; with a seed, every weight (biases too) random."""
    layers = [KERAS[kind](H, return_sequences=True, return_state=True, **kw) for _ in range(num_layers)]
    rng = np.random.default_rng(seed)
    for k, layer in enumerate(layers):
        layer.build((None, None, H_IN if k == 0 else H))
        if seed is not None:
            for w in layer.weights:
                w.assign(torch.as_tensor(rng.uniform(-0.6, 0.6, w.shape), dtype=torch.float32))
    return layers


def _run_keras(layers: list, x: torch.Tensor):
    """Output sequence of the top layer and each layer's final states, as torch (num_layers, N, H)."""
    finals, out = [], x
    for layer in layers:
        out, *states = layer(out)
        finals.append(states)
    return out, [torch.stack([f[j] for f in finals]) for j in range(len(finals[0]))]


def _run_torch(net: nn.Module, x: torch.Tensor):
    with torch.no_grad():
        out, state = net(x)
    return out, list(state) if isinstance(state, tuple) else [state]


def _assert_close(got, want):
    torch.testing.assert_close(torch.as_tensor(got).detach(), want.detach(), atol=ATOL, rtol=0)


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_torch_to_keras_gives_the_same_outputs_and_states(kind, num_layers):
    """Does a Keras stack loaded from a torch module compute what the module computes?"""
    net = _torch_net(kind, num_layers)
    layers = _keras_stack(kind, num_layers)
    convert.torch_to_keras(net, layers)
    x = _x()
    k_out, k_states = _run_keras(layers, x)
    t_out, t_states = _run_torch(net, x)
    _assert_close(k_out, t_out)                        # (N, L, H): Keras is batch-first
    for k_state, t_state in zip(k_states, t_states):   # h_n (and c_n): (num_layers, N, H)
        _assert_close(k_state, t_state)


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_keras_to_torch_gives_the_same_outputs_and_states(kind, num_layers):
    """Does a torch module loaded from Keras layers with random (nonzero) biases match Keras?"""
    layers = _keras_stack(kind, num_layers, seed=1)
    net = _torch_net(kind, num_layers, seed=2)
    convert.keras_to_torch(layers, net)
    x = _x(3)
    k_out, k_states = _run_keras(layers, x)
    t_out, t_states = _run_torch(net, x)
    _assert_close(t_out, k_out)
    for k_state, t_state in zip(k_states, t_states):
        _assert_close(t_state, k_state)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_reference_layers_fed_keras_weights_match_keras(kind):
    """Do lstm()/gru() from course_lib.reference, given keras_to_reference weights, match Keras?"""
    layers = _keras_stack(kind, 2, seed=4)
    x = _x(5)
    k_out, k_states = _run_keras(layers, x)
    weights = [convert.keras_to_reference(layer) for layer in layers]
    out, state = REFERENCE[kind](x, None, weights, batch_first=True)
    _assert_close(out, k_out)
    for got, want in zip(state if kind == "lstm" else (state,), k_states):
        _assert_close(got, want)


def test_gru_round_trip_torch_keras_torch_is_exact():
    """Does a GRU come back from Keras with every parameter bit for bit the same?"""
    net = _torch_net("gru", 2)
    layers = _keras_stack("gru", 2)
    convert.torch_to_keras(net, layers)
    back = _torch_net("gru", 2, seed=9)
    convert.keras_to_torch(layers, back)
    for (name, p), q in zip(net.named_parameters(), back.parameters()):
        assert torch.equal(p, q), name


def test_lstm_round_trip_keeps_weights_and_the_bias_sum():
    """Keras keeps one LSTM bias: do the matrices and b_ih + b_hh survive, with b_hh = 0 on return?"""
    net = _torch_net("lstm", 2)
    layers = _keras_stack("lstm", 2)
    convert.torch_to_keras(net, layers)
    back = _torch_net("lstm", 2, seed=9)
    convert.keras_to_torch(layers, back)
    for k in range(2):
        for name in (f"weight_ih_l{k}", f"weight_hh_l{k}"):
            assert torch.equal(getattr(back, name), getattr(net, name)), name
        b_sum = getattr(net, f"bias_ih_l{k}") + getattr(net, f"bias_hh_l{k}")
        assert torch.equal(getattr(back, f"bias_ih_l{k}"), b_sum)
        assert torch.equal(getattr(back, f"bias_hh_l{k}"), torch.zeros(4 * H))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_round_trip_keras_torch_keras_is_exact(kind):
    """Does every Keras variable come back unchanged after a trip through torch?"""
    layers = _keras_stack(kind, 1, seed=6)
    net = _torch_net(kind, 1)
    convert.keras_to_torch(layers, net)
    again = _keras_stack(kind, 1)
    convert.torch_to_keras(net, again)
    for a, b in zip(layers[0].weights, again[0].weights):
        assert torch.equal(a.value, b.value), a.path


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_cells_convert_both_ways(kind):
    """Do nn.LSTMCell/nn.GRUCell and keras.layers.LSTMCell/GRUCell agree on one step?"""
    torch.manual_seed(0)
    tcell = {"lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind](H_IN, H)
    kcell = {"lstm": keras.layers.LSTMCell, "gru": keras.layers.GRUCell}[kind](H)
    convert.torch_to_keras(tcell, kcell)   # builds the Keras cell
    x, h = torch.randn(N, H_IN), torch.randn(N, H)
    states = [h, torch.randn(N, H)] if kind == "lstm" else [h]
    k_h, _ = kcell(x, states)
    with torch.no_grad():
        t_h = tcell(x, tuple(states) if kind == "lstm" else h)
    _assert_close(k_h, t_h[0] if kind == "lstm" else t_h)
    back = {"lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind](H_IN, H)
    convert.keras_to_torch(kcell, back)
    with torch.no_grad():
        t_back = back(x, tuple(states) if kind == "lstm" else h)
    _assert_close(t_back[0] if kind == "lstm" else t_back, k_h)


def test_layers_without_bias_convert():
    """Does nn.LSTM(bias=False) go into a Keras LSTM(use_bias=False) and give the same outputs?"""
    net = _torch_net("lstm", 1, bias=False)
    layers = _keras_stack("lstm", 1, use_bias=False)
    convert.torch_to_keras(net, layers)
    x = _x()
    _assert_close(_run_keras(layers, x)[0], _run_torch(net, x)[0])


def test_missing_reference_bias_is_written_as_zero():
    """Is a None bias in LayerWeights loaded as zeros rather than left at its old value?"""
    net = _torch_net("gru", 1)
    w = weights_of(net)[0]
    convert.load_reference_into_torch([LayerWeights(w.w_ih, w.w_hh, None, None)], net)
    assert torch.equal(net.bias_ih_l0, torch.zeros(3 * H))
    assert torch.equal(net.bias_hh_l0, torch.zeros(3 * H))


def test_embedding_lstm_dense_model_converts_both_ways():
    """Does the articles' sentiment shape (Embedding -> LSTM -> Dense(sigmoid)) give the same scores?"""
    V, E = 20, 6
    model = keras.Sequential([keras.Input((None,), dtype="int64"), keras.layers.Embedding(V, E),
                              keras.layers.LSTM(H), keras.layers.Dense(1, activation="sigmoid")])
    rng = np.random.default_rng(7)
    for w in model.weights:
        w.assign(torch.as_tensor(rng.uniform(-0.6, 0.6, w.shape), dtype=torch.float32))
    embed, core, head = nn.Embedding(V, E), nn.LSTM(E, H, batch_first=True), nn.Linear(H, 1)
    for module, layer in zip((embed, core, head), model.layers):
        convert.keras_to_torch(layer, module)
    ids = torch.randint(0, V, (N, L), generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        hs, _ = core(embed(ids))
        scores = torch.sigmoid(head(hs[:, -1]))                   # (N, 1): Dense's activation by hand
    _assert_close(scores, torch.as_tensor(model(ids)))
    twin = keras.Sequential([keras.Input((None,), dtype="int64"), keras.layers.Embedding(V, E),
                             keras.layers.LSTM(H), keras.layers.Dense(1, activation="sigmoid")])
    for module, layer in zip((embed, core, head), twin.layers):
        convert.torch_to_keras(module, layer)
    _assert_close(twin(ids), scores)


def test_linear_and_embedding_mismatches_are_named():
    with pytest.raises(TypeError, match="maps to a Keras Dense layer, got LSTM"):
        convert.torch_to_keras(nn.Linear(H, 1), keras.layers.LSTM(H))
    dense = keras.layers.Dense(2)
    dense.build((None, H))
    with pytest.raises(ValueError, match=r"torch layer has \(inputs, outputs\) = \(5, 3\)"):
        convert.torch_to_keras(nn.Linear(H, 3), dense)
    with pytest.raises(ValueError, match="no weights yet"):
        convert.keras_to_torch(keras.layers.Embedding(4, 2), nn.Embedding(4, 2))


# --- what cannot be converted: one clear sentence each ---------------------------------

def test_gru_reset_after_false_is_refused_with_the_reason():
    """Is the 2014-paper GRU refused, naming reset_after and why torch cannot express it?"""
    layer = keras.layers.GRU(H, reset_after=False)
    layer.build((None, None, H_IN))
    with pytest.raises(ValueError, match=r"reset_after=False.*no PyTorch weights"):
        convert.keras_to_reference(layer)
    with pytest.raises(ValueError, match="reset_after=False"):
        convert.torch_to_keras(_torch_net("gru", 1), layer)


def test_relu_lstm_is_refused_with_the_reason():
    """Is the article's activation='relu' LSTM refused, saying nn.LSTM always uses tanh?"""
    layer = keras.layers.LSTM(H, activation="relu")
    layer.build((None, None, H_IN))
    with pytest.raises(ValueError, match=r"activation='relu'.*nn\.LSTM always uses tanh"):
        convert.keras_to_torch(layer, _torch_net("lstm", 1))


def test_hard_sigmoid_gates_are_refused():
    layer = keras.layers.GRU(H, recurrent_activation="hard_sigmoid")
    layer.build((None, None, H_IN))
    with pytest.raises(ValueError, match="recurrent_activation='hard_sigmoid'"):
        convert.keras_to_reference(layer)


def test_units_mismatch_is_named():
    """Does loading a hidden-size-5 module into an 8-unit Keras layer say which sizes differ?"""
    with pytest.raises(ValueError, match=r"units=8 but the weights have hidden size 5"):
        convert.torch_to_keras(_torch_net("lstm", 1), keras.layers.LSTM(8))
    layer = keras.layers.GRU(8)
    layer.build((None, None, H_IN))
    with pytest.raises(ValueError, match=r"expects w_hh of shape \(15, 5\), got \(24, 8\); its hidden size"):
        convert.keras_to_torch(layer, _torch_net("gru", 1))


def test_input_size_mismatch_is_named():
    layer = keras.layers.LSTM(H)
    layer.build((None, None, H_IN + 1))
    with pytest.raises(ValueError, match=f"built for inputs of size {H_IN + 1}"):
        convert.torch_to_keras(_torch_net("lstm", 1), layer)


def test_kind_and_layer_count_mismatches_are_named():
    with pytest.raises(TypeError, match="is a GRU but the torch module is a LSTM"):
        convert.torch_to_keras(_torch_net("lstm", 1), keras.layers.GRU(H))
    with pytest.raises(ValueError, match=r"has 2 layer\(s\) but 1 Keras layer"):
        convert.torch_to_keras(_torch_net("gru", 2), [keras.layers.GRU(H)])
    with pytest.raises(TypeError, match="expected a Keras LSTM or GRU layer"):
        convert.keras_to_reference(keras.layers.Dense(3))


def test_bias_into_a_biasless_layer_is_refused():
    with pytest.raises(ValueError, match="use_bias=False"):
        convert.torch_to_keras(_torch_net("lstm", 1), keras.layers.LSTM(H, use_bias=False))


def test_a_stack_that_drops_the_sequence_is_refused():
    """Is a lower Keras layer with return_sequences=False refused for a stacked torch module?"""
    with pytest.raises(ValueError, match="return_sequences=False"):
        convert.torch_to_keras(_torch_net("lstm", 2), [keras.layers.LSTM(H), keras.layers.LSTM(H)])
