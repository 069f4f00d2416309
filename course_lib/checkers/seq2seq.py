r"""Checkers for sequence to sequence with attention (assignment 7).

- ``check_additive_attention(fn)``: ``fn(query, keys, mask, w_query, w_key, v) -> (context, weights)``,
  additive (Bahdanau) attention of one decoder state against the encoder's states, compared with
  :func:`course_lib.seq2seq.additive_attention`; the named mistakes are in :data:`ADDITIVE_ATTENTION`.
- ``check_decode_step(fn)``: ``fn(y_prev, s_prev, enc_states, mask, weights) -> (logits, state, weights)``,
  one step of the attentive GRU decoder whose parameters are the state dict ``weights`` of a
  :class:`course_lib.seq2seq.Seq2Seq`, compared with that model's ``decode_step``; the named mistakes are
  in :data:`DECODE_STEP`.
- ``check_beam_search(fn)``: ``fn(log_probs, bos, eos, beam_width, max_len) -> (tokens, score)``, beam
  search over a table of next-token log-probabilities, compared token for token with
  :func:`course_lib.seq2seq.beam_search`; the named mistakes are in :data:`BEAM_SEARCH`.
- ``check_seq2seq_model(fn)``: ``fn(src, src_len, tgt_in, tgt_out, seed) -> state dict`` trains the
  exercise's model on the reversal pairs it is given; the grader loads the returned tensors into the
  course's model (:mod:`.weights`) and measures its exact-match accuracy, decoding greedily, on fresh
  strings drawn here with a seed hashed from the check's seed (a secret one in grading); neither those
  strings nor their seed ever reach the student's function.

Shapes: N batch, S source length, H hidden size (of keys and query alike), A attention size, E embedding
size, V vocabulary size. The mistaken variants below are written from scratch, independently of
:mod:`course_lib.seq2seq`; with every switch at its default each one is the right computation, which the
tests confirm against the reference.
"""
from __future__ import annotations

import functools
import hashlib
import math
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from .. import seq2seq as s2s
from ..data.transduction import Seq2SeqBatch, SymbolVocab, reversal_task
from ._core import CheckFailed, Leaf, Randn, call_student, check_callable, fail, student_facing, unpack_nested
from ._engine import Builder, Case, Exercise, Mistake, correct_on, grade, run_exercise
from .weights import load_trained

__all__ = [
    "check_additive_attention", "check_decode_step", "check_beam_search", "check_seq2seq_model",
    "attention_variant", "decode_step_variant", "beam_variant",
    "ADDITIVE_ATTENTION", "DECODE_STEP", "BEAM_SEARCH",
    "N_SYMBOLS", "MAX_LEN", "MODEL_EMBED", "MODEL_HIDDEN", "N_TRAIN", "N_HELD_OUT", "TARGET_ACCURACY",
    "exercise_config", "exercise_model", "task_data", "derived_seed",
]

_NEG_INF = float("-inf")


def _name(fn: Any, default: str) -> str:
    return getattr(fn, "__name__", default)


# ============================================================================= additive attention

def attention_variant(query, keys, mask, w_query, w_key, v, *, mask_at="before", fill=_NEG_INF, softmax_dim=1,
                      squash=torch.tanh, use_v=True, values="keys", swap_w=False, softmax=True):
    r"""``e_j = v^T tanh(W_q q + W_k k_j)``, ``alpha = softmax_j(e)`` with padding at -inf, ``c = sum_j alpha_j k_j``,
    with switches for the mistakes (every switch at its default: the right answer).

    mask_at      ``"before"`` (padding scores set to ``fill`` before the softmax), ``"after"`` (weights at
                 padding zeroed after it), ``"none"`` (padding attended), ``"inverted"`` (the real positions
                 are the ones hidden)
    fill         the score padding gets (0.0 is the mistake: exp(0) = 1 still weighs it)
    softmax_dim  1, over the source (0 is the mistake: over the batch)
    squash       the nonlinearity inside the score (identity: tanh missing)
    use_v        False: the scores sum the A features instead of projecting them with v
    values       ``"keys"``: the context weighs the encoder states; ``"query"``: it weighs the decoder state
    swap_w       w_query applied to the keys and w_key to the query
    softmax      False: the raw scores are used as weights
    """
    if swap_w:
        w_query, w_key = w_key, w_query
    q = query @ w_query.T                                          # (N, A)
    k = keys @ w_key.T                                             # (N, S, A)
    u = squash(q[:, None, :] + k)                                  # (N, S, A)
    e = u @ v if use_v else u.sum(-1)                              # (N, S)
    real = None if mask is None else mask.bool()                   # (N, S)
    if real is not None and mask_at == "before":
        e = e.masked_fill(~real, fill)
    elif real is not None and mask_at == "inverted":
        e = e.masked_fill(real, _NEG_INF)
    alpha = torch.softmax(e, dim=softmax_dim) if softmax else e    # (N, S)
    if real is not None and mask_at == "after":
        alpha = alpha.masked_fill(~real, 0.0)
    weighed = keys if values == "keys" else query[:, None, :].expand(-1, keys.shape[1], -1)
    context = (alpha[:, :, None] * weighed).sum(1)                 # (N, H)
    return context, alpha


def _m(label: str, hint: str, fn: Callable, **switches) -> Mistake:
    return Mistake(label, hint, functools.partial(fn, **switches))


_MASK = ("Set the scores of padded positions to -inf BEFORE the softmax (e.masked_fill(~mask, float('-inf'))): "
         "their weights are then exactly 0 and the real positions' weights still sum to 1.")
_SCORE = ("The score of source position j is e_j = v · tanh(W_q q + W_k k_j): q @ w_query.T is (N, A), keys @ w_key.T "
          "is (N, S, A); add them (broadcast over S), apply tanh, then multiply by v to get (N, S).")

ADDITIVE_ATTENTION: tuple[Mistake, ...] = (
    _m("the padding mask is applied after the softmax, so the weights of the real positions no longer sum to 1",
       _MASK, attention_variant, mask_at="after"),
    _m("the padding is not masked: padded positions get attention weight too", _MASK, attention_variant,
       mask_at="none"),
    _m("padded scores are set to 0 instead of -inf, so exp(0) = 1 still gives them weight", _MASK,
       attention_variant, fill=0.0),
    _m("the softmax runs over the wrong axis (the batch)",
       "Each row's weights over the source positions must sum to 1: softmax over dim=1 of the (N, S) scores.",
       attention_variant, softmax_dim=0),
    _m("the softmax is missing", "Turn the scores into weights that sum to 1 over the source: softmax(e, dim=1).",
       attention_variant, softmax=False),
    _m("the tanh inside the score is missing", _SCORE, attention_variant, squash=lambda x: x),
    _m("the scores are not projected by v: the A features are summed instead", _SCORE, attention_variant,
       use_v=False),
    _m("w_query and w_key look swapped", "w_query multiplies the decoder state (the query) and w_key the "
       "encoder states (the keys).", attention_variant, swap_w=True),
    _m("the context is computed from the decoder state (the query) instead of the encoder states",
       "The context is the weighted average of the ENCODER states: c = Σ_j α_j k_j, "
       "(weights[:, :, None] * keys).sum(dim=1).", attention_variant, values="query"),
)

_ATTN_FINITE = ("Padded positions get the score -inf, and only the softmax turns that into a weight of exactly 0: "
                "mask first, then softmax. A row must also keep at least one finite score: mask is True at the REAL "
                "positions, so fill where ~mask (is your mask inverted?).")


def _attention_diagnose(case: Case, got, mism) -> str:
    if mism[1] is None:
        return "The weights are right, so look at the context: c = Σ_j α_j k_j, (weights[:, :, None] * keys).sum(1)."
    w = got[1]
    if not torch.allclose(w.sum(1).double(), torch.ones(w.shape[0], dtype=torch.float64), atol=1e-4):
        return "Each row of weights should sum to 1 over the source positions: a softmax over dim=1, after masking."
    mask = case.extra["mask"]
    if mask is not None and bool((w[~mask].abs() > 1e-6).any()):
        return "Padded positions (mask False) must get weight exactly 0. " + _MASK
    return _SCORE


def _attention_case(rand: Randn, N: int, S: int, H: int, A: int, lengths: list[int] | None, seed: int) -> Case:
    args = {"query": rand(N, H), "keys": rand(N, S, H), "mask": None,
            "w_query": rand(A, H, scale=H ** -0.5), "w_key": rand(A, H, scale=H ** -0.5), "v": rand(A)}
    mask = None
    if lengths is not None:
        mask = torch.arange(S)[None, :] < torch.tensor(lengths)[:, None]      # (N, S)
        args["mask"] = mask
    leaves = [Leaf("context", (("batch", N), ("hidden", H))), Leaf("weights", (("batch", N), ("source", S)))]
    label = (f"batch={N}, source={S}, hidden={H}, attention={A}, "
             f"{'lengths=' + str(lengths) if lengths else 'mask=None'}, seed={seed}")
    case = Case(args, leaves, [], label, extra={"mask": mask})
    a = case.args64()
    with torch.no_grad():
        case.expected = [t.double() for t in s2s.additive_attention(a["query"], a["keys"], mask, a["w_query"],
                                                                   a["w_key"], a["v"])]
    return case


def _attention_cases(seed: int) -> list[Case]:
    rand = Randn(seed)
    return [_attention_case(rand, 2, 4, 4, 4, None, seed),          # first: a wrong mask cannot hide the rest
            _attention_case(rand, 3, 5, 4, 6, [5, 3, 1], seed),
            _attention_case(rand, 4, 6, 5, 3, [2, 6, 4, 3], seed)]


def build_additive_attention(name: str = "additive_attention", seed: int = 0) -> tuple[Exercise, list[Case]]:
    """The additive-attention exercise (the student's function called ``name``) and its three cases."""
    cases = _attention_cases(seed)
    ex = Exercise(name, ("query", "keys", "mask", "w_query", "w_key", "v"),
                  lambda result, case: list(unpack_nested(result, ("context", "weights"),
                                                          name).values()),
                  ADDITIVE_ATTENTION, _attention_diagnose, oracle_name="the reference",
                  error_hint="Check the shapes: query @ w_query.T is (N, A), keys @ w_key.T is (N, S, A), and the "
                             "scores e are (N, S).",
                  finite_hint=lambda case: _ATTN_FINITE,
                  passed=correct_on(len(cases), "padded batches with lengths down to 1, and mask=None; hidden sizes "
                                                "4 and 5, attention sizes 3 to 6"))
    return ex, cases


@student_facing
def check_additive_attention(fn: Any, *, seed: int = 0) -> None:
    """Grade ``fn(query, keys, mask, w_query, w_key, v) -> (context (N, H), weights (N, S))``.

    Prints one line on success; raises :class:`CheckFailed` naming the mistake otherwise.
    """
    grade(fn, *build_additive_attention("additive_attention", seed))


# ============================================================================= one decoder step

def _gru_step(x: Tensor, h: Tensor, w: dict[str, Tensor]) -> Tensor:
    """PyTorch's GRU cell, ``r | z | n`` stacked: h' = (1 - z) ⊙ n + z ⊙ h."""
    gi = x @ w["decoder.weight_ih"].T + w["decoder.bias_ih"]       # (N, 3H)
    gh = h @ w["decoder.weight_hh"].T + w["decoder.bias_hh"]       # (N, 3H)
    i_r, i_z, i_n = gi.chunk(3, dim=1)
    h_r, h_z, h_n = gh.chunk(3, dim=1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


def decode_step_variant(y_prev, s_prev, enc_states, mask, weights, *, attend: dict | None = None,
                        cell_input="emb_ctx", out_state="new", out_input="state_ctx", probs=False):
    r"""One attentive decoder step with switches for the mistakes (defaults: the right answer).

    .. math:: c, \alpha = \operatorname{attn}(s_{t-1}, h, \text{mask}), \quad
              s_t = \operatorname{GRU}([E y_{t-1}; c], s_{t-1}), \quad
              \text{logits} = W_o [s_t; c] + b_o

    attend     switches of :func:`attention_variant` (a part-1 mistake carried into the step)
    cell_input ``"emb_ctx"`` [E y; c]; ``"ctx_emb"`` [c; E y] (the wrong order)
    out_state  ``"new"`` s_t; ``"prev"`` s_{t-1} goes into the output layer
    out_input  ``"state_ctx"`` [s; c]; ``"ctx_state"`` [c; s]
    probs      True: the logits went through a softmax
    """
    w = {k: t.to(s_prev.dtype) for k, t in weights.items()}      # float64 on the checker's own copies
    emb = w["tgt_embed.weight"][y_prev.long()]                    # (N, E)
    c, alpha = attention_variant(s_prev, enc_states, mask, w["w_query"], w["w_key"], w["v"], **(attend or {}))
    x = torch.cat([emb, c] if cell_input == "emb_ctx" else [c, emb], dim=1)   # (N, E + H)
    s = _gru_step(x, s_prev, w)                                    # (N, H)
    s_out = s if out_state == "new" else s_prev
    o = torch.cat([s_out, c] if out_input == "state_ctx" else [c, s_out], dim=1)   # (N, 2H)
    logits = o @ w["out.weight"].T + w["out.bias"]                 # (N, V)
    if probs:
        logits = torch.softmax(logits, dim=1)
    return logits, s, alpha


_STEP = ("One step: emb = tgt_embed.weight[y_prev]; context, alpha = additive_attention(s_prev, enc_states, mask, "
         "...); s = GRU cell of [emb; context] from s_prev; logits = [s; context] @ out.weight.T + out.bias.")


def _lift(mistake: Mistake) -> Mistake:
    switches = mistake.fn.keywords
    return Mistake(f"inside the step, {mistake.label}", f"Fix additive_attention first (Part 1). {mistake.hint}",
                   functools.partial(decode_step_variant, attend=switches))


DECODE_STEP: tuple[Mistake, ...] = (
    _m("the embedding and the context are concatenated in the wrong order: the GRU's input is [context; emb]",
       "The decoder cell reads torch.cat([emb, context], dim=1): the embedding first, as the columns of "
       "decoder.weight_ih are laid out.", decode_step_variant, cell_input="ctx_emb"),
    _m("the output layer reads the previous state s_{t-1} instead of the new state s_t",
       "Update the state first, then compute logits from [s_t; context].", decode_step_variant, out_state="prev"),
    _m("the output layer reads [context; s_t] instead of [s_t; context]",
       "The output layer's input is torch.cat([s, context], dim=1): the new state first.", decode_step_variant,
       out_input="ctx_state"),
    _m("the logits went through a softmax", "Return the raw scores [s; context] @ out.weight.T + out.bias; "
       "the loss and the decoding take the (log-)softmax themselves.", decode_step_variant, probs=True),
    *(_lift(m) for m in ADDITIVE_ATTENTION),
)

#: Sizes of the decoder-step cases: (N, S, E, H, A, V, source lengths); the first has no padding, so that a wrong
#: mask cannot hide every other mistake behind a NaN.
_STEP_CASES = ((4, 3, 4, 4, 4, 8, [3, 3, 3, 3]), (3, 5, 4, 6, 5, 7, [5, 2, 3]), (2, 4, 3, 5, 7, 6, [1, 4]))


def _step_case(seed: int, k: int, N: int, S: int, E: int, H: int, A: int, V: int, lengths: list[int]) -> Case:
    rand = Randn(seed * 10 + k)
    model = s2s.Seq2Seq(s2s.Seq2SeqConfig(vocab_size=V, embed_size=E, hidden_size=H, attn_size=A),
                        seed=seed * 10 + k)
    weights = {name: t.detach().clone() for name, t in model.state_dict().items()}
    gen = torch.Generator().manual_seed(seed * 10 + k)
    mask = torch.arange(S)[None, :] < torch.tensor(lengths)[:, None]          # (N, S)
    args = {"y_prev": torch.randint(1, V, (N,), generator=gen), "s_prev": rand(N, H, scale=0.5),
            "enc_states": rand(N, S, H, scale=0.5), "mask": mask, "weights": weights}
    leaves = [Leaf("logits", (("batch", N), ("vocab", V))), Leaf("state", (("batch", N), ("hidden", H))),
              Leaf("weights", (("batch", N), ("source", S)))]
    label = f"batch={N}, source={S}, embed={E}, hidden={H}, attention={A}, vocab={V}, lengths={lengths}, seed={seed}"
    case = Case(args, leaves, [], label)
    ref = model.double().eval()
    with torch.no_grad():
        enc = s2s.Encoded(args["enc_states"].double(), args["s_prev"].double(), mask)
        logits, s, alpha = ref.decode_step(args["y_prev"], args["s_prev"].double(), enc)
    case.expected = [logits, s, alpha]
    return case


def _step_diagnose(case: Case, got, mism) -> str:
    if mism[2] is not None:
        return ("The attention weights are off: call your additive_attention with the PREVIOUS state s_prev as the "
                "query, enc_states as the keys and the mask, and w_query, w_key and v from weights.")
    if mism[1] is not None:
        return ("The attention is right but the new state is not: the GRU cell (weights decoder.weight_ih, "
                "decoder.weight_hh, decoder.bias_ih, decoder.bias_hh, gates stacked r | z | n as in nn.GRUCell) reads "
                "[emb; context] and starts from s_prev; emb is the row y_prev of tgt_embed.weight. " + _STEP)
    return "The state and the weights are right, so look at the output layer. " + _STEP


def build_decode_step(name: str = "decode_step", seed: int = 0) -> tuple[Exercise, list[Case]]:
    """The decoder-step exercise (the student's function called ``name``) and its cases, :data:`_STEP_CASES`."""
    cases = [_step_case(seed, k, *sizes) for k, sizes in enumerate(_STEP_CASES)]
    ex = Exercise(name, ("y_prev", "s_prev", "enc_states", "mask", "weights"),
                  lambda result, case: list(unpack_nested(result, ("logits", "state", "weights"),
                                                          name).values()),
                  DECODE_STEP, _step_diagnose, oracle_name="the reference (Seq2Seq.decode_step)",
                  error_hint="Check the shapes: emb is (N, E), context (N, H), the GRU's input [emb; context] "
                             "(N, E + H), and the output layer's input [s; context] (N, 2H).",
                  finite_hint=lambda case: _ATTN_FINITE,
                  passed=correct_on(len(cases), "batches of 2 to 4 with padded sources, hidden sizes 4 to 6, "
                                                "embedding sizes 3 and 4, vocabularies of 6 to 8 tokens"))
    return ex, cases


@student_facing
def check_decode_step(fn: Any, *, seed: int = 0) -> None:
    """Grade ``fn(y_prev, s_prev, enc_states, mask, weights) -> (logits (N, V), state (N, H), weights (N, S))``.

    Prints one line on success; raises :class:`CheckFailed` naming the mistake otherwise.
    """
    ex, cases = build_decode_step("decode_step", seed)
    try:
        run_exercise(fn, ex, cases)
    except CheckFailed as exc:
        if "not implemented yet" not in str(exc):
            raise
        fail(f"{exc} decode_step calls your additive_attention, so Part 1 must be written first.", exc.mistakes)
    print(f"{ex.name}: {ex.passed}.")


#: The exercises of this module, for the catalogue tests (see :mod:`._engine`). ``check_beam_search`` compares
#: whole hypotheses exactly and ``check_seq2seq_model`` trains against a target: neither runs on the engine.
EXERCISES: dict[str, Builder] = {"additive_attention": build_additive_attention, "decode_step": build_decode_step}


# ============================================================================= beam search

def beam_variant(log_probs: Tensor, bos: int, eos: int, beam_width: int, max_len: int, *, width: int | None = None,
                 accumulate: bool = True, eos_ends: bool = True, stop: str = "best", norm: bool = False,
                 ties: str = "first", steps: int = 0) -> tuple[list[int], float]:
    """Beam search over the table ``log_probs`` (max_len, V, V), with switches for the mistakes.

    Returns the best hypothesis ``(tokens, score)``: tokens after BOS, EOS included when it finished.

    width       the number of hypotheses kept (None: ``beam_width``; 1 is greedy decoding)
    accumulate  False: a hypothesis is ranked by its last log-probability, not by the sum
    eos_ends    False: EOS does not finish a hypothesis, it is extended like any other token
    stop        ``"best"``: stop once no live hypothesis can beat the best finished one;
                ``"first"``: return the first hypothesis that finishes
    norm        True: hypotheses are compared by their score divided by their length
    ties        ``"first"``: of equal scores the one found first wins; ``"last"``: the one found last
    steps       added to ``max_len`` (-1: one step too few)
    """
    k_max = beam_width if width is None else width
    table = log_probs.double()
    live: list[tuple[list[int], float, float]] = [([], 0.0, 0.0)]     # tokens, rank score, true score
    done: list[tuple[list[int], float, float]] = []
    n_steps = max_len + steps
    ran_out = True
    for t in range(n_steps):
        cands = []
        for toks, _, total in live:
            last = toks[-1] if toks else bos
            row = table[t, last]
            for tok in range(row.shape[0]):
                lp = float(row[tok])
                new_total = total + lp
                rank = new_total if accumulate else lp
                cands.append((toks + [tok], rank, new_total))
        order = sorted(range(len(cands)), key=lambda i: -cands[i][1])
        kept = [cands[i] for i in order[:k_max]]
        live = []
        for hyp in kept:
            if eos_ends and hyp[0][-1] == eos:
                if stop == "first":
                    return hyp[0], hyp[2]
                done.append(hyp)
            else:
                live.append(hyp)
        if not live:
            ran_out = False
            break
        if done and max(h[1] for h in done) >= max(h[1] for h in live) and not norm:
            ran_out = False
            break
    pool = done + (live if ran_out else [])
    if not pool:
        return [], 0.0

    def key(h):
        return h[1] / len(h[0]) if norm else h[1]

    best = max(key(h) for h in pool)
    ties_at = [h for h in pool if key(h) == best]
    hyp = ties_at[0] if ties == "first" else ties_at[-1]
    return hyp[0], hyp[2]


def _bv(label: str, hint: str, **switches) -> Mistake:
    return Mistake(label, hint, functools.partial(beam_variant, **switches))


BEAM_SEARCH: tuple[Mistake, ...] = (
    _bv("only one hypothesis is kept at each step: this is greedy decoding, not beam search",
        "Keep the beam_width best extensions at every step (over all live hypotheses and all tokens), not just one.",
        width=1),
    _bv("the log-probabilities are not added up: a hypothesis is ranked by its last token's log-probability alone",
        "A hypothesis's score is the SUM of the log-probabilities of its tokens: extend score + log_probs[t, last].",
        accumulate=False),
    _bv("EOS does not finish a hypothesis: finished hypotheses are extended past the end token",
        "An extension whose token is eos is finished: move it out of the beam into the finished list; only the "
        "others are extended at the next step.", eos_ends=False),
    _bv("the search returns the first hypothesis that finishes, even when a live one can still beat it",
        "Keep searching while the best live hypothesis scores above the best finished one; stop when none does "
        "(log-probabilities only fall as tokens are added), or when nothing is live, or after max_len steps.",
        stop="first"),
    _bv("the hypotheses are compared by their score divided by their length (length normalisation)",
        "This exercise ranks hypotheses by their total log-probability, not by the average per token.", norm=True),
    _bv("of two hypotheses with the same score the one found last is returned",
        "On equal scores keep the one found first (Python's max and a stable sort both do): compare with >, not >=.",
        ties="last"),
    _bv("the search stops one step early: it runs max_len - 1 steps",
        "A hypothesis may hold up to max_len tokens (eos included): run the steps t = 0 .. max_len - 1.", steps=-1),
)


def _table(V: int, T: int, fill: float, entries: dict[tuple[int, int, int], float]) -> Tensor:
    """A (T, V, V) table of ``fill`` with ``entries[(t, a, b)]`` set: score of token b after a at step t."""
    table = torch.full((T, V, V), fill, dtype=torch.float64)
    for (t, a, b), value in entries.items():
        table[t, a, b] = value
    return table


def _beam_cases(seed: int) -> list[dict[str, Any]]:
    """Hand-made tables, each showing one thing (exact dyadic scores, no ties unless on purpose), and random ones
    (normalised log-probabilities, EOS unlikely at first and likely towards max_len)."""
    cases = []
    # Greedy takes token 3 first (-0.25 against -0.5) and is stuck with it; the beam finds 4 4 EOS. The first
    # hypothesis to finish (3 EOS, -2.25) is not the best: 4 4 EOS scores -1.0. Dividing by the length would favour
    # 4 4 4 EOS (-1.3125 / 4 against -1.0 / 3).
    cases.append(("beam beats greedy", dict(log_probs=_table(6, 4, -4.0, {
        (0, 1, 3): -0.25, (0, 1, 4): -0.5,
        (1, 3, 2): -2.0, (1, 3, 5): -2.5, (1, 4, 4): -0.25, (1, 4, 5): -3.0,
        (2, 4, 2): -0.25, (2, 4, 4): -0.5, (2, 5, 2): -0.5,
        (3, 4, 2): -0.0625}), bos=1, eos=2, beam_width=2, max_len=4)))
    # Ties: 3 EOS finishes at step 1 with -2.0; 4 EOS finishes at step 2 with -2.0 too. The first found wins.
    cases.append(("a tie between finished hypotheses", dict(log_probs=_table(5, 4, -6.0, {
        (0, 0, 3): -1.0, (0, 0, 4): -0.5,
        (1, 3, 1): -1.0, (1, 4, 4): -0.5, (1, 4, 3): -3.0,
        (2, 4, 1): -1.0, (2, 4, 3): -1.5}), bos=0, eos=1, beam_width=2, max_len=4)))
    # Length: nothing can finish within max_len = 3 (EOS is unlikely), so the best live hypothesis is returned,
    # with 3 tokens and no EOS; the second step decides between 2 5 and 3 3.
    cases.append(("no hypothesis finishes within max_len", dict(log_probs=_table(6, 3, -8.0, {
        (0, 5, 2): -0.5, (0, 5, 3): -0.75,
        (1, 2, 2): -1.5, (1, 2, 4): -1.25, (1, 3, 3): -0.5, (1, 3, 4): -2.0,
        (2, 3, 1): -0.25, (2, 3, 4): -0.5, (2, 4, 1): -0.25, (2, 4, 3): -0.5}), bos=5, eos=0, beam_width=2,
        max_len=3)))
    gen = torch.Generator().manual_seed(seed)
    for V, T, width in ((6, 6, 3), (7, 5, 2), (5, 7, 4)):
        table = 2.0 * torch.randn(T, V, V, generator=gen, dtype=torch.float64)
        bos, eos = (int(i) for i in torch.randperm(V, generator=gen)[:2])
        table[:, :, eos] += torch.linspace(-4.0, 3.0, T, dtype=torch.float64)[:, None]   # EOS likelier as t grows
        table = torch.log_softmax(table, dim=-1)
        cases.append(("a random table", dict(log_probs=table, bos=bos, eos=eos, beam_width=width, max_len=T)))
    return cases


def _reference_beam(log_probs: Tensor, bos: int, eos: int, beam_width: int, max_len: int) -> tuple[list[int], float]:
    """The best hypothesis of :func:`course_lib.seq2seq.beam_search` driven by the table."""
    def step(tokens: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        return log_probs[t, tokens], t + 1                          # (B, V), the step count of each hypothesis

    best = s2s.beam_search(step, torch.zeros(1, dtype=torch.long), bos=bos, eos=eos, beam_width=beam_width,
                           max_len=max_len)
    return best[0]


def _is_int(value: Any) -> bool:
    """A Python int, a NumPy integer or a 0-d integer tensor (not a bool)."""
    if type(value) is Tensor:
        return value.dim() == 0 and not value.is_floating_point() and not value.is_complex() \
            and value.dtype != torch.bool
    return type(value) is int or isinstance(value, np.integer)


def _tokens_and_score(result: Any, name: str) -> tuple[list[int], float]:
    """The student's ``(tokens, score)`` as a list of ints and a float, after checking their types."""
    if result is None:
        fail(f"{name}: your {name} returned None — did you forget `return`? Expected a tuple (tokens, score).")
    if type(result) not in (tuple, list) or len(result) != 2:
        fail(f"{name}: your {name} returned a {type(result).__name__}; expected a tuple (tokens, score): the best "
             f"hypothesis's tokens as a list of ints and its total log-probability as a float.")
    tokens, score = (tuple.__getitem__ if type(result) is tuple else list.__getitem__)(result, 0), \
        (tuple.__getitem__ if type(result) is tuple else list.__getitem__)(result, 1)
    if type(tokens) is np.ndarray:
        tokens = torch.as_tensor(np.array(tokens, copy=True))
    if type(tokens) is Tensor:
        if tokens.dim() != 1 or tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
            fail(f"{name}: tokens should be a list of ints (or a 1-D integer tensor), got a tensor of dtype "
                 f"{str(tokens.dtype).replace('torch.', '')} and shape {tuple(tokens.shape)}.")
        tokens = [int(i) for i in tokens.tolist()]
    elif type(tokens) in (list, tuple):
        items = list(tokens)
        if items and type(items[0]) in (list, tuple):
            fail(f"{name}: your {name} returned a list of hypotheses; return only the best one, as a tuple "
                 f"(tokens, score).")
        if not all(_is_int(i) for i in items):
            bad = next(i for i in items if not _is_int(i))
            fail(f"{name}: tokens should be a list of Python ints, but it holds a {type(bad).__name__}; "
                 f"use int(...) or .item() on each token.")
        tokens = [int(i) for i in items]
    else:
        fail(f"{name}: tokens should be a list of ints, got a {type(tokens).__name__}.")
    if type(score) is Tensor and score.numel() == 1 and score.is_floating_point():
        score = float(score.detach().reshape(()))
    elif type(score) in (float, int) or isinstance(score, np.floating):
        score = float(score)
    else:
        fail(f"{name}: score should be a float (the hypothesis's total log-probability), got a "
             f"{type(score).__name__}.")
    return tokens, score


@student_facing
def check_beam_search(fn: Any, *, seed: int = 0) -> None:
    """Grade ``fn(log_probs, bos, eos, beam_width, max_len) -> (tokens, score)``: the best hypothesis, exactly.

    Prints one line on success; raises :class:`CheckFailed` naming the mistake otherwise.
    """
    name = _name(fn, "beam_search")
    check_callable(fn, name, ("log_probs", "bos", "eos", "beam_width", "max_len"))
    cases = _beam_cases(seed)
    answers: list[tuple[list[int], float] | str] = []          # (tokens, score), or why it could not be read
    for _, args in cases:
        try:
            answers.append(_tokens_and_score(call_student(fn, name, args), name))
        except CheckFailed as exc:
            answers.append(str(exc))
    for (what, args), answer in zip(cases, answers):
        V, T = args["log_probs"].shape[2], args["log_probs"].shape[0]
        label = (f"{what}: V={V}, bos={args['bos']}, eos={args['eos']}, beam_width={args['beam_width']}, "
                 f"max_len={T}, seed={seed}")
        if isinstance(answer, str):
            fail(f"{answer} (case: {label}.)")
        tokens, score = answer
        want_tokens, want_score = _reference_beam(**args)
        if tokens == want_tokens:
            if not math.isclose(score, want_score, rel_tol=1e-6, abs_tol=1e-6):
                fail(f"{name}: the right tokens {tokens}, but the score {score:.6g} should be {want_score:.6g}, the "
                     f"sum of their log-probabilities log_probs[t, previous token, token] (case: {label}.)")
            continue
        for mistake in BEAM_SEARCH:
            if _beam_mistake_fits(mistake, cases, answers):
                fail(f"{name}: {mistake.label}. It returned {tokens} (score {score:.6g}) where the reference finds "
                     f"{want_tokens} (score {want_score:.6g}), exactly as that mistake does. {mistake.hint} "
                     f"(case: {label}.)", [mistake.label])
        fail(f"{name}: returned {tokens} (score {score:.6g}); the reference finds {want_tokens} (score "
             f"{want_score:.6g}) (case: {label}). At each step extend every live hypothesis by every token, keep the "
             f"beam_width best by total log-probability, move those ending in eos to the finished list, and stop "
             f"when no live hypothesis scores above the best finished one (or none is live, or after max_len "
             f"steps); return the best finished one (the best live one if none finished).")
    print(f"{name}: the same best hypothesis as the reference on {len(cases)} tables (beam beats greedy, a tie, "
          f"nothing finishing within max_len, and {len(cases) - 3} random tables with beam widths 2 to 4).")


def _beam_mistake_fits(mistake: Mistake, cases, answers) -> bool:
    """Does the mistake give the student's tokens on every case that the reference does not get right?"""
    explains_a_difference = False
    for (_, args), answer in zip(cases, answers):
        if isinstance(answer, str):
            continue
        m_tokens, _ = mistake.fn(**args)
        if m_tokens != answer[0]:
            return False
        explains_a_difference |= m_tokens != _reference_beam(**args)[0]
    return explains_a_difference


# ============================================================================= training to a target

#: The task: reversal of 1 to MAX_LEN letters from N_SYMBOLS; the model: Seq2Seq with attention, E and H.
N_SYMBOLS, MAX_LEN = 6, 6
MODEL_EMBED, MODEL_HIDDEN = 16, 32
#: Training pairs handed to the student's function, and held-out strings the grader draws for itself.
N_TRAIN, N_HELD_OUT = 12_800, 1000
#: Exact-match accuracy to reach on the held-out strings, decoding greedily. Measured with the notebook's recipe
#: (one pass over the pairs in 200 batches of 64, Adam lr 2e-2, clipping at 1; 10-24 s on one core of a machine
#: loaded 7-9 deep): 0.898 to 0.998 over seeds 2-15. The untrained model gets none right (seeds 0-3); after 40
#: batches at lr 1e-3 it gets about 9%, nearly all one letter long.
TARGET_ACCURACY = 0.8


def exercise_config() -> s2s.Seq2SeqConfig:
    """The exercise's architecture: a GRU encoder-decoder with additive attention."""
    return s2s.Seq2SeqConfig(vocab_size=SymbolVocab(N_SYMBOLS).size, embed_size=MODEL_EMBED,
                             hidden_size=MODEL_HIDDEN, attention=True)


def exercise_model() -> s2s.Seq2Seq:
    """A fresh model of the exercise's architecture, for loading the student's weights into."""
    return s2s.Seq2Seq(exercise_config(), seed=0)


def derived_seed(seed: int, purpose: str) -> int:
    """A seed for ``purpose`` ("train", "held-out", "model") made from the check's seed by a one-way hash, so that
    the seeds the student's function receives say nothing about the seed of the held-out strings."""
    digest = hashlib.sha256(f"rnn-to-lstm/07_seq2seq/{purpose}/{seed}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2**31


def task_data(seed: int) -> tuple[Seq2SeqBatch, Seq2SeqBatch]:
    """``(train, held_out)`` for the check at ``seed``: two reversal batches drawn with unrelated seeds."""
    train = reversal_task(N_TRAIN, min_len=1, max_len=MAX_LEN, n_symbols=N_SYMBOLS, seed=derived_seed(seed, "train"))
    held_out = reversal_task(N_HELD_OUT, min_len=1, max_len=MAX_LEN, n_symbols=N_SYMBOLS,
                             seed=derived_seed(seed, "held-out"))
    return train, held_out


@student_facing
def check_seq2seq_model(fn: Any, *, seed: int = 0, target: float = TARGET_ACCURACY) -> None:
    """Grade ``fn(src, src_len, tgt_in, tgt_out, seed) -> state dict``: train the exercise's model on the pairs given.

    The returned tensors are checked against the exercise's architecture and loaded into a fresh
    :class:`~course_lib.seq2seq.Seq2Seq`, which decodes greedily fresh strings drawn here (never passed to
    ``fn``); the fraction reversed exactly, EOS included, must reach ``target``.
    """
    name = _name(fn, "train_seq2seq")
    check_callable(fn, name, ("src", "src_len", "tgt_in", "tgt_out", "seed"))
    train, held_out = task_data(seed)
    args = {"src": train.src, "src_len": train.src_len, "tgt_in": train.tgt_in, "tgt_out": train.tgt_out,
            "seed": derived_seed(seed, "model")}
    with torch.enable_grad():
        result = call_student(fn, name, args)
    model = load_trained(result, exercise_model, name)
    with torch.no_grad():
        pred, _ = model.greedy(held_out.src, held_out.src_len, held_out.tgt_out.shape[1])
    correct = s2s.sequence_correct(pred, held_out.tgt_out)
    accuracy = float(correct.float().mean())
    if accuracy < target:
        by_len = s2s.accuracy_by_length(correct, held_out.src_len)
        per = ", ".join(f"{n}: {a:.0%}" for n, a in sorted(by_len.items()))
        fail(f"{name}: with the weights you return, the model reverses {accuracy:.1%} of {N_HELD_OUT} fresh strings "
             f"exactly, below the target {target:.0%} (by source length: {per}). Check that the loss goes down: the "
             f"targets are tgt_out with PAD ignored (F.cross_entropy(..., ignore_index=PAD)), the model reads "
             f"Seq2SeqBatch(src, src_len, tgt_in, tgt_out), and every batch needs zero_grad, backward and an "
             f"optimiser step (the notebook's recipe: 200 batches of 64, Adam lr 2e-2, clipping at 1).")
    vocab = SymbolVocab(N_SYMBOLS)
    shown = ", ".join(f"{vocab.decode(s)!r} -> {vocab.decode(p)!r}" for s, p in zip(held_out.src[:3], pred[:3]))
    print(f"{name}: reverses {accuracy:.1%} of {N_HELD_OUT} fresh strings exactly (target {target:.0%}), "
          f"for example {shown}.")
