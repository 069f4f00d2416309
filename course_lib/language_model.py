"""Character-level language modelling with a recurrent network: data, training, evaluation, sampling.

The model reads characters ``c_1 .. c_t`` and gives a distribution over the next one,
``p(c_{t+1} | c_1 .. c_t) = softmax(W_y h_t + b_y)``. It is trained with **teacher forcing**: at
every step the input is the true previous character of the text, never the model's own guess, and
the loss is the mean cross-entropy of the true next characters::

    CE = -(1/T) sum_t log p(c_{t+1} | c_1 .. c_t)          (nats per character)
    perplexity = exp(CE)

A perplexity of ``k`` means the model is as unsure as a uniform choice among ``k`` characters; the
uniform model over a vocabulary of ``V`` characters has perplexity ``V``, and the unigram model (each
character's frequency in the training text, whatever came before) sits in between.

Everything works on one long text cut by **position**: the first part trains, the last part is held
out (:func:`split_ids`). Shuffled windows would put neighbouring sentences on both sides.

Training uses **truncated backpropagation through time** (:func:`train_lm`): the training text is laid
out as ``N`` rows, each a contiguous stretch of text (:func:`stream_windows`); window ``k`` of row ``n``
continues window ``k-1`` of the same row, so the state ``h`` reached at the end of a window is the right
start for the next one. It is carried across windows but **detached**, so gradients flow back at most
``L`` steps (the window length)::

    for each window (x, y) of shape (N, L):
        logits, h = model(x, h)            # starts from the carried state
        loss = CE(logits, y); loss.backward(); optimiser step
        h = h.detach()                     # keep the value, cut the graph

With ``carry=False`` the state restarts from zeros every window, as with shuffled windows.

Sampling (:func:`next_char_probs`, :func:`sample_ids`, :func:`generate`): temperature ``T`` divides the
logits before the softmax, ``p = softmax(z / T)``; top-k keeps the ``k`` largest logits; ``T = 0`` is
greedy decoding, the argmax. A sample is drawn by inverse transform: lay the probabilities end to end
on [0, 1) and pick the piece a uniform number ``u`` falls into, ``id = #{j : cdf_j < u}``.

Shapes: N batch rows, L window length, V vocabulary size, H hidden size, K windows.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .data import CharVocab, load_text
from .models import ModelConfig, SequenceModel, State
from .train import _ProgressBar

__all__ = ["Corpus", "corpus", "split_ids", "stream_windows", "char_model", "hidden_for_budget",
           "n_params", "run", "detach_state", "LMHistory", "train_lm", "cross_entropy", "perplexity",
           "unigram_cross_entropy", "uniform_cross_entropy", "next_char_probs", "sample_ids", "generate",
           "hidden_trace", "share_of_known_words", "samples_html", "text_features", "unit_correlations", "longest_repeat", "activation_html"]


# ----------------------------------------------------------------------------- data

@dataclass(frozen=True)
class Corpus:
    """The shipped text as ids, split by position: ``train`` first, ``held_out`` last."""

    vocab: CharVocab
    train: Tensor         # (T_train,) int64
    held_out: Tensor      # (T_held,) int64


def corpus(held_out: float = 0.1) -> Corpus:
    """*Alice* as character ids, the last ``held_out`` fraction kept aside (the vocabulary covers all of it)."""
    text = load_text()
    vocab = CharVocab(text)
    train, held = split_ids(vocab.encode(text), held_out)
    return Corpus(vocab, train, held)


def split_ids(ids: Tensor, held_out: float = 0.1) -> tuple[Tensor, Tensor]:
    """``(train, held_out)``: the first ``1 - held_out`` of ``ids`` and the rest, split by position."""
    if ids.dim() != 1:
        raise ValueError(f"ids must be a 1-D tensor of character ids, got shape {tuple(ids.shape)}.")
    if not 0 < held_out < 1:
        raise ValueError(f"held_out must be a fraction strictly between 0 and 1, got {held_out!r}.")
    cut = int(round(ids.shape[0] * (1 - held_out)))
    return ids[:cut], ids[cut:]


def stream_windows(ids: Tensor, batch_size: int, seq_len: int) -> tuple[Tensor, Tensor]:
    """Inputs and targets for truncated BPTT: ``(xs, ys)``, each (K, N, L), row n of window k+1
    continuing row n of window k.

    The text is cut into ``N = batch_size`` contiguous rows of ``T = (len(ids) - 1) // N`` characters
    (row n reads ``ids[n T : (n+1) T]``), and each row into ``K = T // L`` windows; ``ys`` is ``xs``
    shifted by one character. The last ``T - K L`` characters of each row are dropped.

        >>> xs, ys = stream_windows(torch.arange(13), batch_size=2, seq_len=3)
        >>> xs[0], xs[1]                       # window 1 continues window 0, row by row
        (tensor([[0, 1, 2],
                [6, 7, 8]]), tensor([[ 3,  4,  5],
                [ 9, 10, 11]]))
        >>> ys[0]
        tensor([[1, 2, 3],
                [7, 8, 9]])
    """
    if ids.dim() != 1:
        raise ValueError(f"ids must be a 1-D tensor of character ids, got shape {tuple(ids.shape)}.")
    N, L = int(batch_size), int(seq_len)
    if N < 1 or L < 1:
        raise ValueError(f"batch_size and seq_len must be positive, got {batch_size!r} and {seq_len!r}.")
    T = (ids.shape[0] - 1) // N
    K = T // L
    if K < 1:
        raise ValueError(f"{ids.shape[0]} characters in {N} rows leave fewer than seq_len={L} per row.")
    starts = torch.arange(N) * T                                   # (N,)
    offsets = torch.arange(K * L)                                  # (K L,)
    x = ids[starts[:, None] + offsets]                             # (N, K L)
    y = ids[starts[:, None] + offsets + 1]                         # (N, K L)
    xs = x.view(N, K, L).transpose(0, 1).contiguous()              # (K, N, L)
    ys = y.view(N, K, L).transpose(0, 1).contiguous()              # (K, N, L)
    return xs, ys


# ----------------------------------------------------------------------------- the model

def char_model(kind: str, vocab_size: int, hidden_size: int, *, embed_size: int = 32,
               seed: int | None = 0) -> SequenceModel:
    """A character model: ``nn.Embedding(V, E)`` -> one ``kind`` layer of ``H`` units -> ``nn.Linear(H, V)``.

    Its ``state_dict`` keys are ``embed.weight, core.weight_ih_l0, core.weight_hh_l0, core.bias_ih_l0,
    core.bias_hh_l0, head.weight, head.bias``.
    """
    cfg = ModelConfig(kind=kind, vocab_size=vocab_size, input_size=embed_size, hidden_size=hidden_size,
                      output_size=vocab_size, readout="every")
    return SequenceModel(cfg, seed=seed)


def n_params(model: nn.Module) -> int:
    """Number of trainable numbers in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


_GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def hidden_for_budget(kind: str, vocab_size: int, budget: int, *, embed_size: int = 32) -> int:
    """The hidden size H whose :func:`char_model` has the parameter count closest to ``budget``.

    With ``G`` gate blocks (RNN 1, GRU 3, LSTM 4) the count is
    ``V E + G H (E + H + 2) + H V + V``: solved for H and rounded.
    """
    V, E, G = vocab_size, embed_size, _GATES[kind]

    def count(H: int) -> int:
        return V * E + G * H * (E + H + 2) + H * V + V

    return min(range(1, 4096), key=lambda H: abs(count(H) - budget))


def run(model: SequenceModel, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
    """``(logits (N, L, V), new state)``: the model read over ids ``x`` (N, L), starting from ``state``
    (``None`` for zeros); the state is ``h`` (1, N, H), or ``(h, c)`` for an LSTM."""
    hs, state = model.core(model.embed(x), state)                  # hs (N, L, H)
    return model.head(hs), state                                   # (N, L, V)


def detach_state(state: State) -> State:
    """The same state values, cut from the graph that made them."""
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


# ----------------------------------------------------------------------------- training

@dataclass
class LMHistory:
    """One training run: the training loss of every window and the wall time, in seconds."""

    loss: list[float] = field(default_factory=list)
    seconds: float = 0.0


def train_lm(model: SequenceModel, ids: Tensor, *, steps: int, batch_size: int = 32, seq_len: int = 64,
             lr: float = 3e-3, clip: float = 1.0, carry: bool = True, seed: int = 0,
             progress: bool = True) -> LMHistory:
    """Train ``model`` in place by truncated BPTT on the text ``ids`` for ``steps`` windows (Adam).

    The windows of :func:`stream_windows` are visited in order, epoch after epoch; with ``carry`` the
    state reached at the end of a window (detached) starts the next one, and it restarts from zeros at
    each new epoch; without ``carry`` it restarts from zeros every window.
    """
    xs, ys = stream_windows(ids, batch_size, seq_len)             # (K, N, L) each
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = LMHistory()
    bar = _ProgressBar(steps, enabled=progress)
    start = time.perf_counter()
    model.train()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        state = None
        for step in range(steps):
            k = step % xs.shape[0]
            if k == 0 or not carry:
                state = None
            logits, state = run(model, xs[k], state)               # (N, L, V)
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ys[k].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            state = detach_state(state)
            history.loss.append(loss.item())
            bar.update(step + 1, history.loss[-1])
    bar.close()
    history.seconds = time.perf_counter() - start
    return history


# ----------------------------------------------------------------------------- evaluation

@torch.no_grad()
def cross_entropy(model: SequenceModel, ids: Tensor, *, chunk: int = 512) -> float:
    """Mean cross-entropy, in nats per character, of predicting ``ids[1:]`` from what precedes them.

    The text is read as one stream, ``chunk`` characters at a time with the state carried, so every
    prediction sees the whole text before it.
    """
    if ids.dim() != 1 or ids.shape[0] < 2:
        raise ValueError(f"ids must be a 1-D tensor of at least 2 character ids, got shape {tuple(ids.shape)}.")
    was_training = model.training
    model.eval()
    total, state = 0.0, None
    try:
        for s in range(0, ids.shape[0] - 1, chunk):
            x = ids[s:s + chunk][None]                             # (1, l)
            y = ids[s + 1:s + chunk + 1][None]                     # (1, l) (the last chunk may be shorter)
            x = x[:, :y.shape[1]]
            logits, state = run(model, x, state)                   # (1, l, V)
            total += nn.functional.cross_entropy(logits[0].double(), y[0], reduction="sum").item()
    finally:
        model.train(was_training)
    return total / (ids.shape[0] - 1)


def perplexity(cross_entropy_nats: float) -> float:
    """``exp(CE)``: the number of equally likely characters the model is as unsure as."""
    return math.exp(cross_entropy_nats)


def unigram_cross_entropy(train: Tensor, held_out: Tensor, vocab_size: int) -> float:
    """Cross-entropy on ``held_out[1:]`` of the unigram model: character frequencies of ``train``,
    add-one smoothed, ``p(c) = (count(c) + 1) / (T + V)``, whatever came before."""
    counts = torch.bincount(train, minlength=vocab_size).double() + 1.0   # (V,)
    logp = (counts / counts.sum()).log()
    return float(-logp[held_out[1:]].mean())


def uniform_cross_entropy(vocab_size: int) -> float:
    """``log V``: every character equally likely."""
    return math.log(vocab_size)


# ----------------------------------------------------------------------------- sampling

def next_char_probs(logits: Tensor, temperature: float = 1.0, top_k: int | None = None) -> Tensor:
    """``softmax(z / T)`` over the last axis, with every logit below the ``top_k``-th largest removed.

    ``temperature = 0`` is greedy: all the probability on the argmax. Shapes: (..., V) -> (..., V).
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature!r}.")
    if top_k is not None and not 1 <= top_k <= logits.shape[-1]:
        raise ValueError(f"top_k must be None or between 1 and {logits.shape[-1]}, got {top_k!r}.")
    if temperature == 0:
        return nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    z = logits / temperature                                        # (..., V)
    if top_k is not None:
        kth = z.topk(top_k, dim=-1).values[..., -1:]               # (..., 1), the k-th largest
        z = z.masked_fill(z < kth, -math.inf)
    return torch.softmax(z, dim=-1)


def sample_ids(logits: Tensor, temperature: float, top_k: int | None, u: Tensor) -> Tensor:
    """One character id per row of ``logits`` (N, V), drawn by inverse transform with the uniforms ``u`` (N,).

    ``id_n = #{j : cdf_nj < u_n}`` with ``cdf = cumsum(next_char_probs(logits, temperature, top_k))``;
    at ``temperature = 0`` it is the argmax and ``u`` is not used. Returns an int64 tensor (N,).
    """
    if temperature == 0:
        return logits.argmax(-1)
    cdf = next_char_probs(logits, temperature, top_k).cumsum(-1)   # (N, V)
    ids = (cdf < u[:, None]).sum(-1)                               # (N,)
    return ids.clamp(max=logits.shape[-1] - 1)                     # u above the rounded total of 1


@torch.no_grad()
def generate(model: SequenceModel, vocab: CharVocab, prompt: str, n: int, *, temperature: float = 1.0,
             top_k: int | None = None, seed: int = 0) -> str:
    """``n`` characters sampled after ``prompt``, feeding each sampled character back in."""
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        logits, state = run(model, vocab.encode(prompt)[None])     # (1, len(prompt), V)
        z = logits[:, -1]                                          # (1, V)
        out = []
        for _ in range(n):
            u = torch.rand(1, generator=gen, dtype=z.dtype)
            c = sample_ids(z, temperature, top_k, u)               # (1,)
            out.append(int(c))
            z, state = run(model, c[None], state)
            z = z[:, -1]
    finally:
        model.train(was_training)
    return vocab.decode(out)


@torch.no_grad()
def hidden_trace(model: SequenceModel, ids: Tensor) -> Tensor:
    """The hidden state h_t after reading each character of ``ids``: (len(ids), H)."""
    hs, _ = model.core(model.embed(ids[None]))                     # (1, T, H)
    return hs[0]


# ----------------------------------------------------------------------------- what the units track

def text_features(text: str) -> dict[str, Tensor]:
    """Per-character features of ``text`` that a unit might track, each (len(text),) float64.

    - ``"inside quotes"``: 1 from an opening quote (Carroll's backtick `` ` ``) up to its closing ``'``
      (a ``'`` followed by a letter is an apostrophe, as in ``don't``, and closes nothing);
    - ``"position in line"``: characters read since the last newline;
    - ``"space"``: 1 on a space, the boundary between words.
    """
    inside, pos, space = [], [], []
    quoted, column = False, 0
    for i, ch in enumerate(text):
        if ch == "`":
            quoted = True
        elif ch == "'" and not (i + 1 < len(text) and text[i + 1].isalpha()):
            quoted = False
        column = 0 if ch == "\n" else column + 1
        inside.append(float(quoted))
        pos.append(float(column))
        space.append(float(ch == " "))
    return {name: torch.tensor(v, dtype=torch.float64)
            for name, v in (("inside quotes", inside), ("position in line", pos), ("space", space))}


def unit_correlations(hs: Tensor, feature: Tensor) -> Tensor:
    """Pearson correlation of every unit's activation with ``feature``: hs (T, H), feature (T,) -> (H,).

    ``r_j = sum_t (h_tj - mean_j)(f_t - mean_f) / (T std_j std_f)``; a constant unit gets 0.
    """
    h = hs.double() - hs.double().mean(0)                          # (T, H)
    f = feature.double() - feature.double().mean()                 # (T,)
    denom = h.norm(dim=0) * f.norm()                               # (H,)
    return torch.where(denom > 0, (h * f[:, None]).sum(0) / denom.clamp_min(1e-300), torch.zeros_like(denom))


def longest_repeat(text: str, min_len: int = 4) -> tuple[str, int]:
    """The longest substring of ``text`` that occurs at least twice without overlapping, and its count.

    Returns ``("", 0)`` when nothing of ``min_len`` characters repeats.
    """
    best = ("", 0)
    for length in range(min_len, len(text) // 2 + 1):
        found = None
        for s in range(len(text) - length + 1):
            piece = text[s:s + length]
            if text.count(piece) >= 2 and text.find(piece, text.find(piece) + length) >= 0:
                found = piece
                break
        if found is None:
            break
        best = (found, text.count(found))
    return best


def share_of_known_words(text: str, known: set[str]) -> float:
    """The fraction of the whitespace-separated words of ``text`` (lower-cased) that are in ``known``."""
    words = text.lower().split()
    return sum(w in known for w in words) / len(words) if words else 0.0


def samples_html(samples: dict[str, str], known: dict[str, float], highlight: str = "") -> str:
    """An HTML table: one row per decoding setting, its share of known words and its sample, with every
    occurrence of ``highlight`` in the first row marked."""
    import html

    def shown(text: str) -> str:
        return html.escape(text).replace("\n", "&#8629; ")

    rows = []
    for k, (name, text) in enumerate(samples.items()):
        cell = shown(text)
        if k == 0 and highlight:
            cell = cell.replace(shown(highlight), f"<mark>{shown(highlight)}</mark>")
        rows.append(f"<tr><th style='white-space:nowrap;vertical-align:top;padding-right:1em'>{html.escape(name)}</th>"
                    f"<td style='text-align:right;vertical-align:top;padding-right:1em'>{100 * known[name]:.0f}%</td>"
                    f"<td style='font-family:monospace;font-size:0.85em'>{cell}</td></tr>")
    return ("<table><tr><th>decoding</th><th>known words</th><th>sampled characters</th></tr>"
            + "".join(rows) + "</table>")


def activation_html(text: str, values: Tensor) -> str:
    """``text`` as HTML, each character on a background from blue (-1) through white to red (+1)."""
    import html

    spans = []
    for ch, v in zip(text, values.clamp(-1, 1).tolist()):
        r, g, b = (255, int(255 * (1 - v)), int(255 * (1 - v))) if v >= 0 else \
            (int(255 * (1 + v)), int(255 * (1 + v)), 255)
        shown = "&#8629;<br>" if ch == "\n" else html.escape(ch).replace(" ", "&nbsp;")
        spans.append(f'<span style="background:rgb({r},{g},{b});color:#000">{shown}</span>')
    return ('<div style="font-family:monospace;line-height:1.6;font-size:0.9em">' + "".join(spans) + "</div>")
