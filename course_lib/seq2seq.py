r"""Sequence to sequence: a GRU encoder-decoder, with or without additive (Bahdanau) attention.

The encoder reads the source :math:`x_1 \ldots x_n` and keeps its state at every step,
:math:`h_1 \ldots h_n`. The decoder writes the target one token at a time from its own state
:math:`s_t`, which starts at the encoder's last state, :math:`s_0 = h_n`.

- Without attention, :math:`s_0 = h_n` is the *only* bridge between the two: everything the
  decoder will ever know about the source must fit into one vector of H numbers.
- With attention (Bahdanau, Cho and Bengio, 2015), before each step the decoder scores every
  encoder state against its previous state, :math:`e_{t,j} = v^\top \tanh(W_q s_{t-1} + W_k h_j)`,
  turns the scores into weights :math:`\alpha_{t,j} = \operatorname{softmax}_j(e_{t,j})` (padding
  masked out), and reads the *context* :math:`c_t = \sum_j \alpha_{t,j} h_j`. The context enters
  the step with the previous token, :math:`s_t = \operatorname{GRU}([E y_{t-1}; c_t], s_{t-1})`,
  and the output, :math:`\text{logits}_t = W_o [s_t; c_t] + b_o`.

Shapes: N batch, S source length (padded), T target length, H hidden size, A attention size,
V vocabulary size (PAD, BOS, EOS and the symbols of :mod:`course_lib.data.transduction`).

Decoding: :meth:`Seq2Seq.forward` runs the decoder under *teacher forcing* (it reads the true
previous token), :meth:`Seq2Seq.greedy` runs it *free* (it reads its own previous output), and
:func:`beam_search` keeps the ``beam_width`` best partial outputs instead of one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Union

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course_lib.data.transduction import BOS, EOS, PAD, Seq2SeqBatch, reversal_task
from course_lib.train import Task

__all__ = [
    "IGNORE",
    "additive_attention",
    "Seq2SeqConfig",
    "Encoded",
    "Seq2Seq",
    "beam_search",
    "reversal",
    "sequence_correct",
    "accuracy_by_length",
]

IGNORE = -100
"""Target id that the loss skips: ``nn.functional.cross_entropy``'s default ``ignore_index``.
:func:`reversal` writes it where the target is padding, so padding costs nothing."""


def additive_attention(query: Tensor, keys: Tensor, mask: Tensor | None,
                       w_query: Tensor, w_key: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    r"""Additive attention (Bahdanau et al., 2015): one query against every key.

    .. math::
        e_j = v^\top \tanh(W_q q + W_k k_j), \qquad
        \alpha_j = \frac{\exp e_j}{\sum_{j'} \exp e_{j'}}, \qquad
        c = \sum_j \alpha_j k_j

    where padded positions get :math:`e_j = -\infty` *before* the softmax, so that their weight is
    exactly 0 and the other weights still sum to one.

    Args:
        query: (N, H_q), the decoder's previous state :math:`s_{t-1}`.
        keys: (N, S, H_k), the encoder's states :math:`h_1 .. h_S` (also the values).
        mask: (N, S) bool, True at real positions and False at padding; None attends everywhere.
        w_query: (A, H_q), w_key: (A, H_k), v: (A,).

    Returns:
        ``(context, weights)``: c (N, H_k) and :math:`\alpha` (N, S), each row summing to one.
    """
    q = query @ w_query.T                                         # (N, A)
    k = keys @ w_key.T                                            # (N, S, A)
    e = torch.tanh(q[:, None, :] + k) @ v                         # (N, S)
    if mask is not None:
        e = e.masked_fill(~mask, float("-inf"))                   # padding: weight exactly 0
    alpha = torch.softmax(e, dim=1)                               # (N, S), over the source
    context = (alpha[:, :, None] * keys).sum(dim=1)               # (N, H_k)
    return context, alpha


@dataclass(frozen=True)
class Seq2SeqConfig:
    """Everything that defines a :class:`Seq2Seq`.

    vocab_size   V, shared by source and target (``SymbolVocab(n).size``)
    embed_size   size of a token's embedding E
    hidden_size  H, the size of the encoder's h_j and the decoder's s_t
    attention    False: the final encoder state is the only bridge; True: additive attention
    attn_size    A, the width of the attention's hidden layer (defaults to H)
    """

    vocab_size: int
    embed_size: int = 32
    hidden_size: int = 64
    attention: bool = True
    attn_size: int | None = None

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embed_size", "hidden_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.attn_size is not None and (not isinstance(self.attn_size, int) or self.attn_size < 1):
            raise ValueError(f"attn_size must be None or a positive integer, got {self.attn_size!r}")


class Encoded(NamedTuple):
    """What the decoder gets from the encoder.

    states  (N, S, H)  h_1 .. h_S (zeros at padding)
    final   (N, H)     h_n, the state after each sequence's last real token
    mask    (N, S)     True at real positions
    """

    states: Tensor
    final: Tensor
    mask: Tensor


class Seq2Seq(nn.Module):
    """A GRU encoder-decoder; with ``config.attention`` the decoder attends over the encoder's states.

    ``seed`` makes the initial weights reproducible without touching the global random state.
    """

    def __init__(self, config: Seq2SeqConfig, *, seed: int | None = None) -> None:
        super().__init__()
        if not isinstance(config, Seq2SeqConfig):
            raise TypeError(f"expected a Seq2SeqConfig, got {type(config).__name__}")
        self.config = config
        V, E, H = config.vocab_size, config.embed_size, config.hidden_size
        A = config.attn_size or H
        with torch.random.fork_rng(enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.src_embed = nn.Embedding(V, E, padding_idx=PAD)
            self.encoder = nn.GRU(E, H, batch_first=True)
            self.tgt_embed = nn.Embedding(V, E, padding_idx=PAD)
            C = H if config.attention else 0                      # width of the context c_t
            self.decoder = nn.GRUCell(E + C, H)
            self.out = nn.Linear(H + C, V)
            if config.attention:
                self.w_query = nn.Parameter(torch.randn(A, H) / H**0.5)
                self.w_key = nn.Parameter(torch.randn(A, H) / H**0.5)
                self.v = nn.Parameter(torch.randn(A) / A**0.5)

    # ------------------------------------------------------------------ encoder
    def encode(self, src: Tensor, src_len: Tensor, *, mask_padding: bool = True) -> Encoded:
        """Run the encoder over the real tokens only (packed), so h_n is each sequence's own last state.

        ``mask_padding=False`` gives a mask that is True everywhere: attention then also looks at
        the padding, which is what the chapter's padding experiment shows going wrong.
        """
        if src.dim() != 2 or src.dtype != torch.int64:
            raise ValueError(f"src must be int64 token ids (N, S), got {src.dtype} of shape {tuple(src.shape)}")
        if src_len.shape != src.shape[:1] or int(src_len.min()) < 1 or int(src_len.max()) > src.shape[1]:
            raise ValueError(f"src_len must hold one length per sequence, each between 1 and "
                             f"S = {src.shape[1]}; got {src_len.tolist()}")
        packed = pack_padded_sequence(self.src_embed(src), src_len.cpu(), batch_first=True,
                                      enforce_sorted=False)
        out, h_n = self.encoder(packed)                           # h_n (1, N, H) at each true end
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])  # (N, S, H)
        steps = torch.arange(src.shape[1], device=src.device)
        mask = steps[None, :] < src_len[:, None] if mask_padding else torch.ones_like(src, dtype=torch.bool)
        return Encoded(states, h_n[0], mask)

    # ------------------------------------------------------------------ decoder
    def decode_step(self, y_prev: Tensor, s_prev: Tensor, enc: Encoded) -> tuple[Tensor, Tensor, Tensor | None]:
        """One decoder step: previous token ids (N,) and state (N, H) -> logits (N, V), state, weights (N, S)."""
        emb = self.tgt_embed(y_prev)                              # (N, E)
        if not self.config.attention:
            s = self.decoder(emb, s_prev)                         # (N, H)
            return self.out(s), s, None                           # (N, V)
        c, alpha = additive_attention(s_prev, enc.states, enc.mask,
                                      self.w_query, self.w_key, self.v)  # (N, H), (N, S)
        s = self.decoder(torch.cat([emb, c], dim=1), s_prev)     # (N, H)
        return self.out(torch.cat([s, c], dim=1)), s, alpha       # (N, V)

    def forward(self, batch: Seq2SeqBatch, *, mask_padding: bool = True) -> Tensor:
        """Teacher forcing: the decoder reads the true previous token. Returns logits (N, T, V)."""
        logits, _ = self.teacher_forced(batch, mask_padding=mask_padding)
        return logits

    def teacher_forced(self, batch: Seq2SeqBatch, *, mask_padding: bool = True) -> tuple[Tensor, Tensor | None]:
        """Logits (N, T, V) under teacher forcing, and the attention weights (N, T, S) (None without attention)."""
        enc = self.encode(batch.src, batch.src_len, mask_padding=mask_padding)
        s, logits, weights = enc.final, [], []
        for y_prev in batch.tgt_in.unbind(1):                     # y_prev (N,): the true previous token
            out, s, alpha = self.decode_step(y_prev, s, enc)
            logits.append(out)
            weights.append(alpha)
        alphas = torch.stack(weights, dim=1) if self.config.attention else None
        return torch.stack(logits, dim=1), alphas

    @torch.no_grad()
    def greedy(self, src: Tensor, src_len: Tensor, max_len: int, *,
               mask_padding: bool = True) -> tuple[Tensor, Tensor | None]:
        """Free running: each step reads the model's own previous output (the most likely token).

        Returns tokens (N, max_len), PAD after each sequence's EOS, and the attention weights
        (N, max_len, S) (None without attention).
        """
        enc = self.encode(src, src_len, mask_padding=mask_padding)
        N = src.shape[0]
        y = torch.full((N,), BOS, dtype=torch.long)
        s, done = enc.final, torch.zeros(N, dtype=torch.bool)
        tokens, weights = [], []
        for _ in range(max_len):
            out, s, alpha = self.decode_step(y, s, enc)
            y = out.argmax(dim=1).masked_fill(done, PAD)          # (N,)
            tokens.append(y)
            weights.append(alpha)
            done = done | (y == EOS)
            if bool(done.all()):
                break
        toks = torch.stack(tokens, dim=1)
        toks = torch.cat([toks, toks.new_full((N, max_len - toks.shape[1]), PAD)], dim=1)
        alphas = torch.stack(weights, dim=1) if self.config.attention else None
        return toks, alphas

    @torch.no_grad()
    def beam(self, src: Tensor, src_len: Tensor, max_len: int, *, beam_width: int) -> list[int]:
        """Beam search for one source sequence, ``src`` (S,): the best output's tokens, EOS included."""
        enc = self.encode(src[None], src_len.reshape(1))

        def step(tokens: Tensor, state: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, tuple]:
            s, states, mask = state
            out, s, _ = self.decode_step(tokens, s, Encoded(states, s, mask))
            return torch.log_softmax(out, dim=1), (s, states, mask)

        best = beam_search(step, (enc.final, enc.states, enc.mask), bos=BOS, eos=EOS,
                           beam_width=beam_width, max_len=max_len)
        return best[0][0]


State = Union[Tensor, tuple]
StepFn = Callable[[Tensor, State], tuple[Tensor, State]]


def _select(state: State, index: Tensor) -> State:
    """Rows ``index`` of every tensor in ``state`` (a tensor or a tuple of them, batch first)."""
    if isinstance(state, Tensor):
        return state.index_select(0, index)
    return tuple(_select(part, index) for part in state)


def beam_search(step: StepFn, state: State, *, bos: int, eos: int, beam_width: int,
                max_len: int) -> list[tuple[list[int], float]]:
    r"""Keep the ``beam_width`` most likely partial outputs at every step; return the finished ones.

    A hypothesis :math:`y_1 \ldots y_t` is scored by its log-probability,
    :math:`\sum_k \log p(y_k \mid y_{<k}, x)`. At each step every live hypothesis is extended by
    every token, and the ``beam_width`` best extensions over all of them are kept. An extension
    that ends in ``eos`` is finished and leaves the beam (which then has fewer live hypotheses).
    The search stops after ``max_len`` tokens, when no hypothesis is live, or as soon as the best
    finished score is at least the best live score: a log-probability only falls as tokens are
    added, so no live hypothesis can overtake it. With ``beam_width=1`` this is greedy decoding.

    Args:
        step: ``step(tokens (B,), state) -> (log_probs (B, V), new_state)``, the model's next-token
            log-probabilities for each of B live hypotheses, given the last token of each.
        state: the state for the single starting hypothesis (batch dimension 1): a tensor or a
            tuple of tensors, batch first; rows are selected as hypotheses survive.
        bos: the first token fed to ``step``. eos: the token that finishes a hypothesis.
        beam_width: hypotheses kept per step (>= 1). max_len: most tokens per hypothesis (>= 1).

    Returns:
        ``[(tokens, log_prob), ...]``, best first: the finished hypotheses (``tokens`` ends in
        ``eos``; ``bos`` is not included) and, if the search ran out of ``max_len``, the live ones.
    """
    if not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"beam_width must be a positive integer, got {beam_width!r}")
    if not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"max_len must be a positive integer, got {max_len!r}")
    prefixes: list[list[int]] = [[]]
    scores = torch.zeros(1, dtype=torch.float64)                 # (B,) log-probabilities
    last = torch.tensor([bos])
    finished: list[tuple[list[int], float]] = []
    for _ in range(max_len):
        log_probs, state = step(last, state)                      # (B, V)
        total = scores[:, None] + log_probs.double()              # (B, V): every extension
        V = total.shape[1]
        k = min(beam_width, total.numel())
        best, flat = total.flatten().topk(k)                      # the k best extensions
        rows, toks = flat // V, flat % V
        keep = []
        for score, row, tok in zip(best.tolist(), rows.tolist(), toks.tolist()):
            if tok == eos:
                finished.append((prefixes[row] + [tok], score))
            else:
                keep.append((row, tok, score))
        if not keep:
            break
        prefixes = [prefixes[row] + [tok] for row, tok, _ in keep]
        scores = torch.tensor([score for *_, score in keep], dtype=torch.float64)
        rows_kept = torch.tensor([row for row, _, _ in keep])
        state = _select(state, rows_kept)
        last = torch.tensor([tok for _, tok, _ in keep])
        if finished and max(s for _, s in finished) >= float(scores.max()):
            break
    else:
        finished.extend(zip(prefixes, scores.tolist()))
    return sorted(finished, key=lambda hyp: -hyp[1])


def reversal(*, min_len: int = 1, max_len: int = 10, n_symbols: int = 10) -> Task:
    """The reversal task as a :class:`course_lib.train.Task` for :func:`course_lib.train.train`.

    ``x`` is the whole :class:`Seq2SeqBatch` (the model reads ``src``, ``src_len`` and ``tgt_in``);
    ``y`` is ``tgt_out`` with padding replaced by :data:`IGNORE`, so the loss skips it.
    """

    def sample(n: int, seed: int) -> tuple[Seq2SeqBatch, Tensor]:
        batch = reversal_task(n, min_len=min_len, max_len=max_len, n_symbols=n_symbols, seed=seed)
        return batch, batch.tgt_out.masked_fill(batch.tgt_out == PAD, IGNORE)

    return Task(f"reversal {min_len}-{max_len}", sample)


def sequence_correct(pred: Tensor, tgt_out: Tensor) -> Tensor:
    """(N,) bool: True where ``pred`` (N, T') equals ``tgt_out`` (N, T) up to and including its EOS."""
    T = tgt_out.shape[1]
    if pred.shape[1] < T:
        pred = torch.cat([pred, pred.new_full((pred.shape[0], T - pred.shape[1]), PAD)], dim=1)
    real = tgt_out != PAD                                        # (N, T): target tokens and EOS
    return ((pred[:, :T] == tgt_out) | ~real).all(dim=1)


def accuracy_by_length(correct: Tensor, lengths: Tensor) -> dict[int, float]:
    """Fraction of ``correct`` (N,) bools for each source length in ``lengths`` (N,)."""
    return {int(n): float(correct[lengths == n].float().mean()) for n in lengths.unique()}
