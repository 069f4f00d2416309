"""Tests for course_lib.models: the recurrent model around nn.RNN / nn.LSTM / nn.GRU and the small transformer."""
import pytest
import torch
from torch import nn

from course_lib.models import AttentionBlock, AttentionModel, ModelConfig, RecurrentModel, SequenceModel

RECURRENT = ["rnn", "lstm", "gru"]


def _model(kind, **kw):
    cfg = dict(kind=kind, input_size=3, hidden_size=5, output_size=2)
    cfg.update(kw)
    return SequenceModel(ModelConfig(**cfg), seed=0)


@pytest.mark.parametrize("kind", RECURRENT)
@pytest.mark.parametrize("num_layers", [1, 2])
def test_unrolled_loop_matches_pytorch_layer(kind, num_layers):
    """Does the Python loop through the reference cells give what nn.RNN/LSTM/GRU give, step by step?"""
    model = _model(kind, num_layers=num_layers, readout="every")
    x = torch.randn(4, 7, 3)
    y_loop, hs = model.unrolled(x)
    torch.testing.assert_close(y_loop, model(x))
    torch.testing.assert_close(torch.stack(hs, dim=1), model.hidden_states(x))
    assert len(hs) == 7 and hs[0].shape == (4, 5)


@pytest.mark.parametrize("kind", RECURRENT)
def test_hidden_states_are_the_torch_module_output(kind):
    """Is the model's state exactly the output of the torch module it wraps, fed the same input?"""
    model = _model(kind)
    x = torch.randn(2, 6, 3)
    reference = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](3, 5, batch_first=True)
    reference.load_state_dict({k.replace("core.", ""): v for k, v in model.state_dict().items()
                               if k.startswith("core.")})
    out, _ = reference(x)
    torch.testing.assert_close(model.hidden_states(x), out)
    torch.testing.assert_close(model(x), model.head(out[:, -1]))


@pytest.mark.parametrize("kind", RECURRENT)
def test_step_by_step_generation_matches_whole_sequence(kind):
    """Does feeding one input at a time with step() reproduce the whole-sequence outputs?"""
    model = _model(kind, readout="every", num_layers=2)
    x = torch.randn(3, 5, 3)
    state, outs = None, []
    for x_t in x.unbind(1):
        y_t, state = model.step(x_t, state)
        outs.append(y_t)
    torch.testing.assert_close(torch.stack(outs, dim=1), model(x))


def test_token_inputs_are_embedded():
    """With vocab_size set, does the model take (N, L) ids and return per-step logits?"""
    model = _model("gru", vocab_size=11, input_size=4, output_size=11, readout="every")
    ids = torch.randint(0, 11, (2, 9))
    assert model(ids).shape == (2, 9, 11)
    torch.testing.assert_close(model(ids), model.head(model.core(model.embed(ids))[0]))
    with pytest.raises(ValueError, match="token ids"):
        model(torch.randn(2, 9, 4))


def test_transformer_is_causal_and_shaped():
    """Is the transformer's output at step t blind to inputs after t, as a recurrent model's is?"""
    model = _model("transformer", hidden_size=8, n_heads=2, readout="every", num_layers=2)
    x = torch.randn(2, 10, 3)
    changed = x.clone()
    changed[:, 6:] += 5.0
    y, y_changed = model(x), model(changed)
    assert y.shape == (2, 10, 2)
    torch.testing.assert_close(y[:, :6], y_changed[:, :6])
    assert not torch.allclose(y[:, 6:], y_changed[:, 6:])


def test_transformer_rejects_sequences_longer_than_its_positions():
    model = _model("transformer", hidden_size=8, n_heads=2, max_len=4)
    with pytest.raises(ValueError, match="max_len"):
        model(torch.randn(1, 5, 3))


def test_seed_fixes_initial_weights_without_touching_global_rng():
    """Same seed, same weights; different seed, different weights; torch's global stream untouched."""
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = SequenceModel(ModelConfig(kind="lstm", input_size=2), seed=7)
    assert torch.equal(torch.rand(3), expected_next)
    b = SequenceModel(ModelConfig(kind="lstm", input_size=2), seed=7)
    c = SequenceModel(ModelConfig(kind="lstm", input_size=2), seed=8)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


@pytest.mark.parametrize("bad, message", [
    (dict(kind="lstmm"), "kind must be one of"),
    (dict(readout="first"), "readout must be"),
    (dict(hidden_size=0), "hidden_size must be a positive integer"),
    (dict(kind="transformer", hidden_size=10, n_heads=4), "divisible by n_heads"),
])
def test_config_rejects_bad_values_in_one_sentence(bad, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**bad)


def test_config_is_frozen():
    cfg = ModelConfig()
    with pytest.raises(Exception):
        cfg.hidden_size = 3


def test_wrong_input_shape_names_the_expected_shape():
    model = _model("rnn")
    with pytest.raises(ValueError, match=r"\(N, L, H_in\) with H_in = 3"):
        model(torch.randn(2, 6, 4))


def test_transformer_cannot_be_unrolled():
    with pytest.raises(ValueError, match="recurrent"):
        _model("transformer", hidden_size=8, n_heads=2).unrolled(torch.randn(1, 3, 3))


def test_recurrent_init_scale_multiplies_only_the_recurrent_weights():
    base = SequenceModel(ModelConfig(kind="rnn", input_size=2, hidden_size=4), seed=3)
    big = SequenceModel(ModelConfig(kind="rnn", input_size=2, hidden_size=4, recurrent_init_scale=3.0), seed=3)
    torch.testing.assert_close(big.core.weight_hh_l0, 3.0 * base.core.weight_hh_l0)
    torch.testing.assert_close(big.core.weight_ih_l0, base.core.weight_ih_l0)
    with pytest.raises(ValueError, match="recurrent kinds"):
        ModelConfig(kind="transformer", recurrent_init_scale=2.0)


# ------------------------------------------------------------------ transformer generation with a KV cache
@pytest.mark.parametrize("vocab_size", [None, 11])
def test_cached_transformer_step_equals_forward_on_the_prefix(vocab_size):
    """Does one cached step give what the uncached forward pass gives on the whole prefix, at every position?"""
    model = _model("transformer", hidden_size=8, n_heads=2, num_layers=2, readout="every", vocab_size=vocab_size)
    x = torch.randint(0, 11, (2, 9)) if vocab_size else torch.randn(2, 9, 3)
    cache = None
    for t in range(9):
        y_t, cache = model.step(x[:, t], cache)
        assert y_t.shape == (2, 2)
        if t in (0, 1, 4, 8):
            torch.testing.assert_close(y_t, model(x[:, :t + 1])[:, -1], rtol=1e-5, atol=1e-5)


def test_cached_step_of_a_last_readout_transformer_is_its_forward():
    """With readout="last", forward(prefix) is one output per sequence; the cached step must equal it."""
    model = _model("transformer", hidden_size=8, n_heads=4, readout="last")
    x = torch.randn(3, 5, 3)
    cache = None
    for t in range(5):
        y_t, cache = model.step(x[:, t], cache)
    torch.testing.assert_close(y_t, model(x), rtol=1e-5, atol=1e-5)


def test_kv_cache_grows_by_one_position_per_step_and_keeps_the_earlier_ones():
    """After t steps, does every layer hold t keys and t values, the first t-1 unchanged by the new step?"""
    model = _model("transformer", hidden_size=8, n_heads=2, num_layers=3, readout="every")
    x = torch.randn(2, 4, 3)
    _, cache = model.step(x[:, 0])
    assert cache.length == 1 and len(cache.layers) == 3
    for t in range(1, 4):
        _, longer = model.step(x[:, t], cache)
        assert longer.length == t + 1
        for (K, V), (K_new, V_new) in zip(cache.layers, longer.layers):
            assert K_new.shape == V_new.shape == (2, 2, t + 1, 4)       # (N, heads, t+1, d_head)
            assert torch.equal(K_new[:, :, :t], K) and torch.equal(V_new[:, :, :t], V)
        cache = longer


def test_transformer_step_refuses_a_recurrent_state_and_positions_past_max_len():
    model = _model("transformer", hidden_size=8, n_heads=2, max_len=2)
    x_t = torch.randn(1, 3)
    with pytest.raises(TypeError, match="KVCache"):
        model.step(x_t, torch.zeros(1, 1, 8))
    _, cache = model.step(x_t)
    _, cache = model.step(x_t, cache)
    with pytest.raises(ValueError, match="max_len=2"):
        model.step(x_t, cache)
    with pytest.raises(ValueError, match=r"\(N, H_in\) with H_in = 3"):
        model.step(torch.randn(1, 4))
    with pytest.raises(TypeError, match="not a KVCache"):
        _model("lstm").step(torch.randn(1, 3), cache)


def test_identity_rnn_starts_as_an_identity_recurrence_and_its_loop_matches_pytorch():
    """An identity RNN (Le et al.'s IRNN) starts with W_hh = I and b_hh = 0, and its ReLU reference loop
    computes what nn.RNN(nonlinearity="relu") computes."""
    cfg = ModelConfig(kind="rnn", input_size=2, hidden_size=5, recurrent_init="identity", nonlinearity="relu")
    model = SequenceModel(cfg, seed=0)
    assert model.core.nonlinearity == "relu"
    assert torch.equal(model.core.weight_hh_l0, torch.eye(5)) and not model.core.bias_hh_l0.any()
    x = torch.randn(3, 7, 2)
    assert torch.allclose(model.unrolled(x)[0], model(x), atol=1e-6)


@pytest.mark.parametrize("changes, message", [
    (dict(kind="lstm", recurrent_init="identity"), "apply to kind='rnn'"),
    (dict(kind="rnn", recurrent_init="orthogonal"), "recurrent_init must be 'default' or 'identity'"),
    (dict(kind="rnn", nonlinearity="sigmoid"), "nonlinearity must be 'tanh' or 'relu'"),
])
def test_identity_init_and_nonlinearity_are_checked(changes, message):
    """The identity start and the ReLU are plain-RNN options; anything else is refused in one sentence."""
    with pytest.raises(ValueError, match=message):
        ModelConfig(input_size=2, **changes)


# ------------------------------------------------------------------ one class per kind of model
@pytest.mark.parametrize("kind, cls", [("rnn", RecurrentModel), ("lstm", RecurrentModel), ("gru", RecurrentModel),
                                       ("transformer", AttentionModel)])
def test_sequence_model_builds_the_model_for_its_kind(kind, cls):
    """Does SequenceModel(config) give a RecurrentModel for the recurrent kinds and an AttentionModel for the
    transformer, each still a SequenceModel, with the weights the subclass itself builds at that seed?"""
    extra = dict(hidden_size=8, n_heads=2) if kind == "transformer" else {}
    model = _model(kind, **extra)
    assert type(model) is cls and isinstance(model, SequenceModel)
    direct = cls(ModelConfig(kind=kind, input_size=3, output_size=2, **{"hidden_size": 5, **extra}), seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), direct.state_dict().values()))


def test_a_model_class_refuses_the_other_kind():
    with pytest.raises(ValueError, match="a RecurrentModel cannot be built with kind='transformer'"):
        RecurrentModel(ModelConfig(kind="transformer", hidden_size=8, n_heads=2))
    with pytest.raises(ValueError, match="an? AttentionModel cannot be built with kind='gru'"):
        AttentionModel(ModelConfig(kind="gru"))


@pytest.mark.parametrize("train", [True, False])
def test_attention_block_computes_what_torch_encoder_layer_computes(train):
    """Loaded with the same weights, does an AttentionBlock compute what a pre-norm nn.TransformerEncoderLayer
    computes under the same causal mask (the arithmetic the book says it repeats)?"""
    torch.manual_seed(0)
    block = AttentionBlock(8, 2)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=32, dropout=0.0, batch_first=True, norm_first=True)
    with torch.no_grad():
        for mine, theirs in [(block.norm1, layer.norm1), (block.qkv.weight, layer.self_attn.in_proj_weight),
                             (block.qkv.bias, layer.self_attn.in_proj_bias), (block.out, layer.self_attn.out_proj),
                             (block.ff1, layer.linear1), (block.ff2, layer.linear2), (block.norm2, layer.norm2)]:
            if isinstance(mine, nn.Module):
                theirs.load_state_dict(mine.state_dict())
            else:
                theirs.copy_(mine)
    block.train(train), layer.train(train)
    z = torch.randn(3, 6, 8)
    mask = nn.Transformer.generate_square_subsequent_mask(6)
    with torch.no_grad():
        torch.testing.assert_close(block(z)[0], layer(z, src_mask=mask, is_causal=True), rtol=1e-5, atol=1e-5)


def test_a_seed_gives_the_weights_torch_encoder_layer_would_have():
    """Are an AttentionBlock's initial weights, drawn at a seed, those nn.TransformerEncoderLayer draws at it?"""
    torch.manual_seed(3)
    block = AttentionBlock(8, 2)
    torch.manual_seed(3)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=32, dropout=0.0, batch_first=True, norm_first=True)
    assert torch.equal(block.qkv.weight, layer.self_attn.in_proj_weight)
    assert torch.equal(block.out.weight, layer.self_attn.out_proj.weight)
    assert torch.equal(block.ff1.weight, layer.linear1.weight) and torch.equal(block.ff2.bias, layer.linear2.bias)


def test_a_cached_step_takes_one_position():
    block = AttentionBlock(8, 2)
    _, cache = block(torch.randn(1, 3, 8))
    with pytest.raises(ValueError, match="a cached step takes one new position, got 2"):
        block(torch.randn(1, 2, 8), cache)
