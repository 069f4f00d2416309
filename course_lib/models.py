"""The book's sequence models: one class around ``nn.RNN``, ``nn.LSTM``, ``nn.GRU`` and a small transformer.

A model is described by a frozen :class:`ModelConfig` (like nanoGPT's ``GPTConfig``) and built by
:class:`SequenceModel`::

    cfg = ModelConfig(kind="lstm", input_size=2, hidden_size=64, output_size=1, readout="last")
    model = SequenceModel(cfg, seed=0)
    y = model(x)                       # x (N, L, 2) -> y (N, 1): the adding problem

    cfg = ModelConfig(kind="gru", vocab_size=60, input_size=32, hidden_size=128,
                      output_size=60, readout="every")
    logits = SequenceModel(cfg)(ids)   # ids (N, L) int64 -> logits (N, L, 60): a character model

Two readouts:

- ``"last"``  the head reads the last step only, ``y = W_y h_L + b_y``: one answer per sequence
  (regression or classification), as in the adding problem.
- ``"every"`` the head reads every step, ``y_t = W_y h_t + b_y``: one answer per step, as in the
  copy task or a character language model.

Besides the fast ``forward`` (PyTorch's own layers), :meth:`SequenceModel.unrolled` runs the
same weights through the reference cells of :mod:`course_lib.reference` in a Python loop over
time and hands back every ``h_t`` as a tensor in the autograd graph, so that ``dL/dh_t`` can be
measured (:mod:`course_lib.measure`). :meth:`SequenceModel.step` advances a model by one input,
the way it runs when it generates: a recurrent model carries its state ``h_t`` (and ``c_t``), a
transformer carries a :class:`KVCache` of the keys and values of every earlier position.

Shapes use the legend of :mod:`course_lib.reference.cells`: N batch, L length, H_in input size,
H hidden size, and O output size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Union

import torch
from torch import Tensor, nn

__all__ = ["KINDS", "RECURRENT_KINDS", "KVCache", "ModelConfig", "SequenceModel", "State"]

RECURRENT_KINDS = ("rnn", "lstm", "gru")
KINDS = RECURRENT_KINDS + ("transformer",)
READOUTS = ("last", "every")



class KVCache(NamedTuple):
    """What a transformer carries from one generated position to the next: the keys and values
    of every earlier position, one ``(K, V)`` pair per layer, each (N, heads, t, d_head).

    A causal mask guarantees that appending a position never changes the keys and values of
    the earlier ones, so they can be kept instead of recomputed. The cache grows by one position
    per step: ``2 * d_model`` numbers per layer and sequence. A step returns a new, longer cache
    and leaves the old one as it was; appending with ``torch.cat`` copies it, O(t d) per step like
    the attention over it (serving systems preallocate the cache and write in place instead).
    """

    layers: tuple[tuple[Tensor, Tensor], ...]

    @property
    def length(self) -> int:
        """t, the number of positions cached so far."""
        return self.layers[0][0].shape[2] if self.layers else 0


#: What :meth:`SequenceModel.step` carries: ``h`` (layers, N, H) for the RNN and GRU,
#: ``(h, c)`` for the LSTM, a :class:`KVCache` for the transformer.
State = Union[Tensor, tuple[Tensor, Tensor], KVCache]


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a :class:`SequenceModel`.

    kind         ``"rnn"`` (Elman, tanh), ``"lstm"``, ``"gru"`` or ``"transformer"``
    input_size   H_in, the size of x_t; with ``vocab_size`` it is the size of the token embedding
    hidden_size  H, the size of h_t (the transformer's model width d_model)
    output_size  O, the size of the head's output (1 for a regression, C for C classes)
    readout      ``"last"`` (one output per sequence) or ``"every"`` (one output per step)
    num_layers   stacked recurrent layers, or transformer encoder layers
    vocab_size   when set, inputs are token ids (N, L) passed through an ``nn.Embedding``
    n_heads      attention heads (transformer only; must divide ``hidden_size``)
    max_len      the longest sequence the transformer's learned positions cover
    recurrent_init_scale  multiplies the recurrent weights W_hh after PyTorch's initialisation
                 (above 1 puts a tanh RNN in the exploding-gradient regime; recurrent kinds only)
    recurrent_init  ``"default"`` (PyTorch's uniform +-1/sqrt(H)) or ``"identity"`` (plain RNN only:
                 W_hh = I and b_hh = 0, so that at the start h_t carries h_{t-1} forward unchanged
                 up to the non-linearity; with ``nonlinearity="relu"`` this is Le et al.'s IRNN, 2015)
    nonlinearity ``"tanh"`` or ``"relu"`` (plain RNN only), as ``nn.RNN`` takes it
    """

    kind: str = "lstm"
    input_size: int = 1
    hidden_size: int = 64
    output_size: int = 1
    readout: str = "last"
    num_layers: int = 1
    vocab_size: int | None = None
    n_heads: int = 4
    max_len: int = 1024
    recurrent_init_scale: float = 1.0
    recurrent_init: str = "default"
    nonlinearity: str = "tanh"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be 'last' (one output per sequence) or 'every' "
                             f"(one output per step), got {self.readout!r}")
        for name in ("input_size", "hidden_size", "output_size", "num_layers", "n_heads", "max_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.vocab_size is not None and (not isinstance(self.vocab_size, int) or self.vocab_size < 1):
            raise ValueError(f"vocab_size must be None or a positive integer, got {self.vocab_size!r}")
        if not self.recurrent_init_scale > 0:
            raise ValueError(f"recurrent_init_scale must be positive, got {self.recurrent_init_scale!r}")
        if self.kind == "transformer" and self.recurrent_init_scale != 1.0:
            raise ValueError("recurrent_init_scale applies to recurrent kinds; a transformer has no W_hh")
        if self.recurrent_init not in ("default", "identity"):
            raise ValueError(f"recurrent_init must be 'default' or 'identity', got {self.recurrent_init!r}")
        if self.nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {self.nonlinearity!r}")
        if self.kind != "rnn" and (self.recurrent_init != "default" or self.nonlinearity != "tanh"):
            raise ValueError(f"recurrent_init and nonlinearity apply to kind='rnn', got kind={self.kind!r} "
                             f"with recurrent_init={self.recurrent_init!r}, nonlinearity={self.nonlinearity!r}")
        if self.kind == "transformer" and self.hidden_size % self.n_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by n_heads ({self.n_heads})")


_CORES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
_CELL_NAMES = {"rnn": "rnn_cell", "lstm": "lstm_cell", "gru": "gru_cell"}


def _ref():
    """``course_lib.reference``, imported when first needed: the grading sandbox hides the answer key, and
    modules built on this one (``course_lib.language_model``) must still import there."""
    from course_lib import reference
    return reference


class SequenceModel(nn.Module):
    """A sequence model: [embedding] -> recurrent layers or causal transformer -> linear head.

    Recurrent kinds (``batch_first``)::

        h_t = cell(x_t, h_{t-1})           # nn.RNN / nn.LSTM / nn.GRU, h_0 = 0
        y   = W_y h_L + b_y                # readout="last"   -> (N, O)
        y_t = W_y h_t + b_y                # readout="every"  -> (N, L, O)

    ``kind="transformer"``: ``z_t = W_in x_t + p_t`` (learned position ``p_t``), then
    ``num_layers`` pre-norm ``nn.TransformerEncoderLayer`` s with a causal mask (step t attends to
    steps <= t only, like a recurrent model), a final LayerNorm, and the same head.

    ``seed`` makes the initial weights reproducible without touching the global random state.
    """

    def __init__(self, config: ModelConfig, *, seed: int | None = None) -> None:
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise TypeError(f"expected a ModelConfig, got {type(config).__name__}")
        self.config = config
        with torch.random.fork_rng(enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self._build(config)

    def _build(self, cfg: ModelConfig) -> None:
        H = cfg.hidden_size
        self.embed = nn.Embedding(cfg.vocab_size, cfg.input_size) if cfg.vocab_size else None
        if cfg.kind == "transformer":
            self.proj = nn.Linear(cfg.input_size, H)
            self.pos = nn.Embedding(cfg.max_len, H)
            layer = nn.TransformerEncoderLayer(H, cfg.n_heads, dim_feedforward=4 * H, dropout=0.0,
                                               batch_first=True, norm_first=True)
            self.core = nn.TransformerEncoder(layer, cfg.num_layers, norm=nn.LayerNorm(H),
                                              enable_nested_tensor=False)
        else:
            extra = {"nonlinearity": cfg.nonlinearity} if cfg.kind == "rnn" else {}
            self.core = _CORES[cfg.kind](cfg.input_size, H, cfg.num_layers, batch_first=True, **extra)
            if cfg.recurrent_init == "identity":
                with torch.no_grad():
                    for w in _ref().weights_of(self.core):
                        w.w_hh.copy_(torch.eye(H))                 # (H, H)
                        w.b_hh.zero_()
            if cfg.recurrent_init_scale != 1.0:
                with torch.no_grad():
                    for w in _ref().weights_of(self.core):
                        w.w_hh.mul_(cfg.recurrent_init_scale)
        self.head = nn.Linear(H, cfg.output_size)

    # ------------------------------------------------------------------ inputs and readout
    @property
    def kind(self) -> str:
        return self.config.kind

    def embed_inputs(self, x: Tensor) -> Tensor:
        """Check ``x`` and embed token ids: the (N, L, H_in) floats the recurrent layers read."""
        cfg = self.config
        if cfg.vocab_size:
            if x.dim() != 2 or x.dtype not in (torch.int64, torch.int32):
                raise ValueError(f"this model embeds token ids: expected an integer tensor (N, L), "
                                 f"got {x.dtype} of shape {tuple(x.shape)}")
            return self.embed(x)                                   # (N, L, H_in)
        if x.dim() != 3 or x.shape[-1] != cfg.input_size or not x.is_floating_point():
            raise ValueError(f"expected a float tensor (N, L, H_in) with H_in = {cfg.input_size}, "
                             f"got {x.dtype} of shape {tuple(x.shape)}")
        return x

    def _readout(self, hs: Tensor) -> Tensor:
        """The head applied to the top layer's states ``hs`` (N, L, H)."""
        if self.config.readout == "last":
            return self.head(hs[:, -1])                            # (N, O)
        return self.head(hs)                                       # (N, L, O)

    # ------------------------------------------------------------------ forward passes
    def hidden_states(self, x: Tensor) -> Tensor:
        """The top layer's state at every step, (N, L, H), computed by PyTorch's layers."""
        z = self.embed_inputs(x)
        if self.kind != "transformer":
            hs, _ = self.core(z)                                   # (N, L, H)
            return hs
        L = z.shape[1]
        if L > self.config.max_len:
            raise ValueError(f"sequence length {L} exceeds this transformer's max_len={self.config.max_len}")
        positions = torch.arange(L, device=z.device)
        z = self.proj(z) + self.pos(positions)                     # (N, L, H)
        mask = nn.Transformer.generate_square_subsequent_mask(L, device=z.device)  # (L, L), -inf above diagonal
        return self.core(z, mask=mask, is_causal=True)             # (N, L, H)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (N, L, H_in) floats, or (N, L) token ids -> (N, O) or (N, L, O) by readout."""
        return self._readout(self.hidden_states(x))

    def unrolled(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The forward pass as an explicit loop over time through the reference cells.

        Returns ``(y, hs)``: the same output as ``forward`` and the list of the top layer's
        ``h_t`` (each (N, H), t = 1..L). Every ``h_t`` is a node of the graph that every later
        step uses, so ``torch.autograd.grad(loss, hs)`` gives the total derivative ``dL/dh_t``.
        """
        if self.kind == "transformer":
            raise ValueError("unrolled() steps a recurrent model through time; a transformer has no h_t to unroll")
        z = self.embed_inputs(x)
        state = None
        hs = []
        for x_t in z.unbind(1):                                    # x_t: (N, H_in)
            h_t, state = self.step_hidden(x_t, state)
            hs.append(h_t)                                         # (N, H)
        return self._readout(torch.stack(hs, dim=1)), hs

    def step_hidden(self, x_t: Tensor, state: State | None) -> tuple[Tensor, State]:
        """One time step through every layer with the reference cells and this model's weights.

        ``x_t`` (N, H_in) already embedded; ``state`` as returned by the previous call (None
        for zeros). Returns the top layer's ``h_t`` (N, H) and the new state.
        """
        cell = getattr(_ref(), _CELL_NAMES[self.kind])
        layers = _ref().weights_of(self.core)
        new_h, new_c = [], []
        inp = x_t
        for k, w in enumerate(layers):
            if self.kind == "lstm":
                prev = None if state is None else (state[0][k], state[1][k])
                h, c = cell(inp, prev, *w)                         # each (N, H)
                new_c.append(c)
            elif self.kind == "rnn":
                h = cell(inp, None if state is None else state[k], *w,
                         nonlinearity=self.config.nonlinearity)     # (N, H)
            else:
                h = cell(inp, None if state is None else state[k], *w)  # (N, H)
            new_h.append(h)
            inp = h
        h_stack = torch.stack(new_h)                               # (layers, N, H)
        new_state = (h_stack, torch.stack(new_c)) if self.kind == "lstm" else h_stack
        return inp, new_state

    def step(self, x_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Advance the model by one input, as it runs when it generates.

        ``x_t`` (N, H_in) floats or (N,) token ids; ``state`` as the previous call returned it
        (None at the start). Returns ``(y_t, state)`` with ``y_t`` (N, O), the output at the
        newest position: ``forward(prefix)[:, -1]`` with ``readout="every"``.

        - Recurrent kinds: ``state`` is PyTorch's layer state, ``h`` or ``(h, c)``, each
          (layers, N, H). The cost of one step does not depend on how many steps came before.
        - ``kind="transformer"``: ``state`` is a :class:`KVCache`. One generation step attends
          the newest position over the cached keys and values and appends its own to them
          (:meth:`_transformer_step`); the cost grows with the cache, O(d^2 + t d) per layer
          after t positions, instead of rerunning the whole prefix.
        """
        if self.kind == "transformer":
            if state is not None and not isinstance(state, KVCache):
                raise TypeError(f"a transformer steps with a KVCache (or None at the start), "
                                f"got {type(state).__name__}")
            return self._transformer_step(x_t, state)
        if isinstance(state, KVCache):
            raise TypeError(f"a {self.kind} model carries its recurrent state h (or (h, c)), not a KVCache")
        if self.config.vocab_size:
            x_t = self.embed(x_t)                                  # (N, H_in)
        out, state = self.core(x_t.unsqueeze(1), state)            # out (N, 1, H), PyTorch's layer
        return self.head(out[:, 0]), state

    def _transformer_step(self, x_t: Tensor, cache: KVCache | None) -> tuple[Tensor, KVCache]:
        r"""One generation step of the transformer at position t = ``cache.length``.

        The newest position enters as ``z_t = W_in x_t + p_t`` and goes through every pre-norm
        layer; in each, with ``u = LayerNorm_1(z_t)``, per head::

            q_t, k_t, v_t = W_q u, W_k u, W_v u              # the newest position's views
            K = [K_cache; k_t],  V = [V_cache; v_t]          # append to the cache: (t+1, d_head)
            a_t = softmax(q_t K^T / sqrt(d_head)) V          # attend over positions 0..t
            z_t <- z_t + W_o [a_t of every head]
            z_t <- z_t + W_2 relu(W_1 LayerNorm_2(z_t))

        No mask is needed: the cache holds earlier positions only, which is exactly what the
        causal mask of :meth:`hidden_states` lets position t see. Returns ``(y_t, longer cache)``.
        """
        cfg = self.config
        t = 0 if cache is None else cache.length
        if t >= cfg.max_len:
            raise ValueError(f"position {t} exceeds this transformer's max_len={cfg.max_len}")
        if cfg.vocab_size:
            if x_t.dim() != 1 or x_t.dtype not in (torch.int64, torch.int32):
                raise ValueError(f"this model embeds token ids: expected an integer tensor (N,), "
                                 f"got {x_t.dtype} of shape {tuple(x_t.shape)}")
            x_t = self.embed(x_t)                                  # (N, H_in)
        elif x_t.dim() != 2 or x_t.shape[-1] != cfg.input_size or not x_t.is_floating_point():
            raise ValueError(f"expected a float tensor (N, H_in) with H_in = {cfg.input_size}, "
                             f"got {x_t.dtype} of shape {tuple(x_t.shape)}")
        z = (self.proj(x_t) + self.pos.weight[t]).unsqueeze(1)     # (N, 1, D)
        N, _, D = z.shape
        heads = cfg.n_heads
        new_layers = []
        for index, layer in enumerate(self.core.layers):
            attn = layer.self_attn
            qkv = nn.functional.linear(layer.norm1(z), attn.in_proj_weight, attn.in_proj_bias)  # (N, 1, 3D)
            q, k, v = (part.view(N, 1, heads, D // heads).transpose(1, 2)
                       for part in qkv.chunk(3, dim=-1))           # each (N, heads, 1, d_head)
            if cache is not None:
                K_cache, V_cache = cache.layers[index]             # each (N, heads, t, d_head)
                k = torch.cat([K_cache, k], dim=2)                 # (N, heads, t+1, d_head)
                v = torch.cat([V_cache, v], dim=2)
            a = _ref().scaled_dot_product_attention(q, k, v)              # (N, heads, 1, d_head)
            z = z + attn.out_proj(a.transpose(1, 2).reshape(N, 1, D))  # (N, 1, D)
            z = z + layer.linear2(layer.activation(layer.linear1(layer.norm2(z))))
            new_layers.append((k, v))
        z = self.core.norm(z)                                      # (N, 1, D)
        return self.head(z[:, 0]), KVCache(tuple(new_layers))      # (N, O)
