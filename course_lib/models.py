"""The book's sequence models: a recurrent model around ``nn.RNN``, ``nn.LSTM``, ``nn.GRU``, and a small
causal transformer.

A model is described by a frozen :class:`ModelConfig` (like nanoGPT's ``GPTConfig``) and built by
:class:`SequenceModel`, which makes a :class:`RecurrentModel` or, for ``kind="transformer"``, an
:class:`AttentionModel` (the two share the embedding, the head and the readout)::

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

Besides the fast ``forward`` (PyTorch's own layers), :meth:`RecurrentModel.unrolled` runs the
same weights through the reference cells of :mod:`course_lib.reference` in a Python loop over
time and hands back every ``h_t`` as a tensor in the autograd graph, so that ``dL/dh_t`` can be
measured (:mod:`course_lib.measure`). ``step`` advances a model by one input, the way it runs
when it generates: a recurrent model carries its state ``h_t`` (and ``c_t``)
(:meth:`RecurrentModel.step`), the transformer a :class:`KVCache` of the keys and values of every
earlier position (:meth:`AttentionModel.step`). The transformer's layers are :class:`AttentionBlock` s,
the arithmetic of ``nn.TransformerEncoderLayer`` written out so that the forward pass and a cached
step run the same code.

Shapes use the legend of :mod:`course_lib.reference.cells`: N batch, L length, H_in input size,
H hidden size, and O output size.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import NamedTuple, Union

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["KINDS", "RECURRENT_KINDS", "KVCache", "ModelConfig", "SequenceModel", "RecurrentModel",
           "AttentionModel", "AttentionBlock", "State"]

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


#: What ``step`` carries: ``h`` (layers, N, H) for the RNN and GRU,
#: ``(h, c)`` for the LSTM, a :class:`KVCache` for the transformer.
State = Union[Tensor, tuple[Tensor, Tensor], KVCache]


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a :class:`SequenceModel` (a :class:`RecurrentModel` or an :class:`AttentionModel`).

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

    ``SequenceModel(config, seed=...)`` builds the model ``config.kind`` asks for, as ``pathlib.Path``
    builds a ``PosixPath``: a :class:`RecurrentModel` for ``"rnn"``, ``"lstm"`` and ``"gru"``, an
    :class:`AttentionModel` for ``"transformer"``. Both subclasses share what is here: the optional
    embedding of token ids, the checks on the input, the linear head and its readout::

        y   = W_y h_L + b_y                # readout="last"   -> (N, O)
        y_t = W_y h_t + b_y                # readout="every"  -> (N, L, O)

    where ``h_t`` is the top layer's state at step t (:meth:`hidden_states`).
    ``seed`` makes the initial weights reproducible without touching the global random state.
    """

    def __new__(cls, *args, **kwargs):
        if cls is SequenceModel:                # pick the model for the config's kind
            config = args[0] if args else kwargs.get("config")
            if isinstance(config, ModelConfig):
                cls = AttentionModel if config.kind == "transformer" else RecurrentModel
        return super().__new__(cls)

    def __init__(self, config: ModelConfig, *, seed: int | None = None) -> None:
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise TypeError(f"expected a ModelConfig, got {type(config).__name__}")
        if (config.kind == "transformer") != isinstance(self, AttentionModel):
            name = type(self).__name__
            raise ValueError(f"{'an' if name[0] in 'AEIOU' else 'a'} {name} cannot be built with "
                             f"kind={config.kind!r}; SequenceModel(config) picks the right model")
        self.config = config
        with torch.random.fork_rng(enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.embed = nn.Embedding(config.vocab_size, config.input_size) if config.vocab_size else None
            self._build(config)
            self.head = nn.Linear(config.hidden_size, config.output_size)

    def _build(self, cfg: ModelConfig) -> None:
        raise TypeError("SequenceModel is built through RecurrentModel or AttentionModel")

    # ------------------------------------------------------------------ inputs and readout
    @property
    def kind(self) -> str:
        return self.config.kind

    def embed_inputs(self, x: Tensor) -> Tensor:
        """Check ``x`` and embed token ids: the (N, L, H_in) floats the layers read."""
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

    def hidden_states(self, x: Tensor) -> Tensor:
        """The top layer's state at every step, (N, L, H)."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (N, L, H_in) floats, or (N, L) token ids -> (N, O) or (N, L, O) by readout."""
        return self._readout(self.hidden_states(x))


class RecurrentModel(SequenceModel):
    """[embedding] -> ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (``batch_first``) -> linear head::

        h_t = cell(x_t, h_{t-1})           # h_0 = 0, for each of num_layers stacked layers
    """

    def _build(self, cfg: ModelConfig) -> None:
        H = cfg.hidden_size
        extra = {"nonlinearity": cfg.nonlinearity} if cfg.kind == "rnn" else {}
        self.core = _CORES[cfg.kind](cfg.input_size, H, cfg.num_layers, batch_first=True, **extra)
        if cfg.recurrent_init == "identity":
            with torch.no_grad():
                for w in _ref().weights_of(self.core):
                    w.w_hh.copy_(torch.eye(H))                     # (H, H)
                    w.b_hh.zero_()
        if cfg.recurrent_init_scale != 1.0:
            with torch.no_grad():
                for w in _ref().weights_of(self.core):
                    w.w_hh.mul_(cfg.recurrent_init_scale)

    def hidden_states(self, x: Tensor) -> Tensor:
        """The top layer's state at every step, (N, L, H), computed by PyTorch's layers."""
        hs, _ = self.core(self.embed_inputs(x))                    # (N, L, H)
        return hs

    def unrolled(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The forward pass as an explicit loop over time through the reference cells.

        Returns ``(y, hs)``: the same output as ``forward`` and the list of the top layer's
        ``h_t`` (each (N, H), t = 1..L). Every ``h_t`` is a node of the graph that every later
        step uses, so ``torch.autograd.grad(loss, hs)`` gives the total derivative ``dL/dh_t``.
        """
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

        ``x_t`` (N, H_in) floats or (N,) token ids; ``state`` is PyTorch's layer state as the previous
        call returned it, ``h`` or ``(h, c)``, each (layers, N, H) (None at the start). Returns
        ``(y_t, state)`` with ``y_t`` (N, O), the output at the newest position:
        ``forward(prefix)[:, -1]`` with ``readout="every"``. The cost of one step does not depend on how
        many steps came before.
        """
        if isinstance(state, KVCache):
            raise TypeError(f"a {self.kind} model carries its recurrent state h (or (h, c)), not a KVCache")
        if self.config.vocab_size:
            x_t = self.embed(x_t)                                  # (N, H_in)
        out, state = self.core(x_t.unsqueeze(1), state)            # out (N, 1, H), PyTorch's layer
        return self.head(out[:, 0]), state


class AttentionBlock(nn.Module):
    r"""One pre-norm causal self-attention layer of width D with ``n_heads`` heads of d_head = D / heads.

    The arithmetic of ``nn.TransformerEncoderLayer(D, n_heads, dim_feedforward=4D, dropout=0,
    batch_first=True, norm_first=True)``, written out so that a cached generation step can run it too::

        u       = LayerNorm_1(z)
        q, k, v = W_q u, W_k u, W_v u                 # per head; W_q | W_k | W_v stacked in ``qkv``
        a       = softmax(q K^T / sqrt(d_head) + mask) V  per head, K and V the keys and values so far
        z      <- z + W_o [a of every head]
        z      <- z + W_2 relu(W_1 LayerNorm_2(z))

    Its weights are drawn in ``nn.TransformerEncoderLayer``'s order (``W_o`` first, then ``qkv``
    by Xavier's rule, zero attention biases), so a seed gives the weights that layer would have.
    """

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        D = d_model
        self.n_heads = n_heads
        self.norm1 = nn.LayerNorm(D)
        self.qkv = nn.utils.skip_init(nn.Linear, D, 3 * D)        # (3D, D), drawn below
        self.out = nn.Linear(D, D)                                  # W_o
        nn.init.xavier_uniform_(self.qkv.weight)
        nn.init.zeros_(self.qkv.bias)
        nn.init.zeros_(self.out.bias)
        self.ff1 = nn.Linear(D, 4 * D)                              # W_1
        self.ff2 = nn.Linear(4 * D, D)                              # W_2
        self.norm2 = nn.LayerNorm(D)

    def forward(self, z: Tensor, cache: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """``z`` (N, T, D) -> ``(z, (K, V))``, the keys and values of every position so far, each (N, heads, t, d_head).

        Without ``cache``, z is a whole sequence and position t attends to positions <= t (the causal mask).
        With ``cache``, the keys and values of t earlier positions, z is one new position (T = 1), which
        attends to all of them and to itself: no mask is needed, the cache holds earlier positions only.
        """
        N, T, D = z.shape
        if cache is not None and T != 1:
            raise ValueError(f"a cached step takes one new position, got {T}")
        q, k, v = (part.view(N, T, self.n_heads, D // self.n_heads).transpose(1, 2)
                   for part in self.qkv(self.norm1(z)).chunk(3, dim=-1))   # each (N, heads, T, d_head)
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)                    # (N, heads, t+1, d_head)
            v = torch.cat([cache[1], v], dim=2)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None)   # (N, heads, T, d_head)
        z = z + self.out(a.transpose(1, 2).reshape(N, T, D))       # (N, T, D)
        z = z + self.ff2(torch.relu(self.ff1(self.norm2(z))))
        return z, (k, v)


class AttentionModel(SequenceModel):
    """[embedding] -> ``z_t = W_in x_t + p_t`` (learned position ``p_t``) -> ``num_layers``
    :class:`AttentionBlock` s with a causal mask (step t attends to steps <= t only, like a recurrent
    model) -> a final LayerNorm -> linear head. Every layer starts with the same weights, as
    ``nn.TransformerEncoder``'s copies of one layer do.
    """

    def _build(self, cfg: ModelConfig) -> None:
        H = cfg.hidden_size
        self.proj = nn.Linear(cfg.input_size, H)                   # W_in
        self.pos = nn.Embedding(cfg.max_len, H)                    # p_t
        first = AttentionBlock(H, cfg.n_heads)
        self.blocks = nn.ModuleList([first] + [copy.deepcopy(first) for _ in range(cfg.num_layers - 1)])
        self.norm = nn.LayerNorm(H)

    def hidden_states(self, x: Tensor) -> Tensor:
        """The top layer's state at every position, (N, L, H), all positions at once."""
        z = self.embed_inputs(x)
        L = z.shape[1]
        if L > self.config.max_len:
            raise ValueError(f"sequence length {L} exceeds this transformer's max_len={self.config.max_len}")
        z = self.proj(z) + self.pos(torch.arange(L, device=z.device))   # (N, L, H)
        for block in self.blocks:
            z, _ = block(z)
        return self.norm(z)                                        # (N, L, H)

    def unrolled(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Refused: a transformer has no h_t carried from step to step (see :meth:`RecurrentModel.unrolled`)."""
        raise ValueError("unrolled() steps a recurrent model through time; a transformer has no h_t to unroll")

    def step(self, x_t: Tensor, state: KVCache | None = None) -> tuple[Tensor, KVCache]:
        r"""One generation step at position t = ``state.length``: ``(y_t, a longer cache)``.

        ``x_t`` (N, H_in) floats or (N,) token ids; ``state`` the :class:`KVCache` the previous call
        returned (None at the start). The newest position enters as ``z_t = W_in x_t + p_t`` and goes
        through every layer (:meth:`AttentionBlock.forward` with that layer's cache), whose keys and
        values it appends to. ``y_t`` (N, O) is ``forward(prefix)[:, -1]`` with ``readout="every"``;
        the cost grows with the cache, O(d^2 + t d) per layer after t positions, instead of rerunning
        the whole prefix.
        """
        if state is not None and not isinstance(state, KVCache):
            raise TypeError(f"a transformer steps with a KVCache (or None at the start), got {type(state).__name__}")
        cfg = self.config
        t = 0 if state is None else state.length
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
        layers = []
        for index, block in enumerate(self.blocks):
            z, kv = block(z, None if state is None else state.layers[index])
            layers.append(kv)
        return self.head(self.norm(z)[:, 0]), KVCache(tuple(layers))   # (N, O)
