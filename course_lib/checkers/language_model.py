"""Checkers for the character language model (assignment 6): sampling, a truncated-BPTT epoch, training.

- ``check_sample(fn)``: ``fn(logits, temperature, top_k, u) -> ids`` draws one character per row of
  ``logits`` (N, V) by inverse transform with the given uniforms ``u`` (N,); compared id for id with
  :func:`course_lib.language_model.sample_ids`; the named mistakes are in :data:`SAMPLE`.
- ``check_tbptt_epoch(fn)``: ``fn(weights, ids, batch_size, seq_len, lr) -> (losses, weights, state)``
  runs one epoch of truncated BPTT with plain SGD on a small GRU character model whose state dict is
  ``weights``; the losses of every window, the weights after the epoch and the state carried out of the
  last window are compared with the reference; the named mistakes are in :data:`TBPTT`.
- ``check_char_model(fn)``: ``fn(train_ids, vocab_size, seed) -> state dict`` trains the exercise's model
  on the first part of the shipped text; the grader loads the returned tensors into the reference
  architecture (:mod:`.weights`) and measures the perplexity on the held-out end of the text, which the
  student's function never receives.

Everything the student's function receives and returns is plain tensors, numbers and dicts of tensors.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .. import language_model as lm
from ._core import CheckFailed, Leaf, Mismatch, call_student, check_callable, fail, student_facing, unpack_nested
from ._engine import Builder, Case, Exercise, Mistake, grade
from .weights import clean_state_dict, load_trained

__all__ = ["check_sample", "check_tbptt_epoch", "check_char_model", "SAMPLE", "TBPTT",
           "sample_variant", "tbptt_variant", "MODEL_KIND", "MODEL_HIDDEN", "MODEL_EMBED", "TARGET_PERPLEXITY"]


def _name(fn: Any, default: str) -> str:
    return getattr(fn, "__name__", default)


def _type_name(value: Any) -> str:
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


# ============================================================================= sampling

def sample_variant(logits: Tensor, temperature: float, top_k: int | None, u: Tensor, *, temp: str = "divide",
                   keep: int = 0, greedy: str = "zero", dim: int = -1) -> Tensor:
    """``sample_ids`` with switches for the mistakes (every switch at its default: the right answer).

    temp    ``"divide"`` z / T; ``"multiply"`` z * T; ``"after"`` softmax(z) / T, not renormalised;
            ``"ignore"`` no temperature at all
    keep    top-k keeps ``top_k + keep`` logits (-1: strictly above the k-th largest)
    greedy  ``"zero"``: T = 0 is the argmax; ``"always"``: the argmax at every temperature;
            ``"divide"``: T = 0 divides by zero like any other temperature
    dim     the axis of the softmax (0 is the mistake: over the batch)
    """
    V = logits.shape[-1]
    if greedy == "always" or (greedy == "zero" and temperature == 0):
        return logits.argmax(-1)
    z = logits.double()
    if temp == "divide":
        z = z / temperature
    elif temp == "multiply":
        z = z * temperature
    if top_k is not None:
        k = min(max(top_k + keep, 1), V)
        kth = z.topk(k, dim=-1).values[..., -1:]
        z = z.masked_fill(z < kth, -math.inf)
    p = torch.softmax(z, dim=dim)
    if temp == "after":
        p = p / temperature
    cdf = p.cumsum(-1)
    return (cdf < u.double()[:, None]).sum(-1).clamp(max=V - 1)


def _sv(label: str, hint: str, **switches) -> Mistake:
    return Mistake(label, hint, lambda *args: sample_variant(*args, **switches))


_TEMP = "Divide the logits by the temperature before the softmax: p = softmax(z / T)."
SAMPLE: tuple[Mistake, ...] = (
    _sv("the temperature is applied after the softmax", _TEMP + " Dividing the probabilities by T afterwards does "
        "not change which characters are likely; it only breaks their sum.", temp="after"),
    _sv("the temperature is not used", _TEMP, temp="ignore"),
    _sv("the logits are multiplied by the temperature instead of divided", _TEMP + " A high T must flatten the "
        "distribution, a low T sharpen it.", temp="multiply"),
    _sv("top-k keeps k-1 characters", "Keep every logit >= the k-th largest (z.topk(k).values[..., -1:]); "
        "a strict > drops the k-th itself.", keep=-1),
    _sv("top-k keeps k+1 characters", "The k-th largest logit is z.topk(k).values[..., -1], the last of the k.",
        keep=1),
    _sv("every draw is the argmax, whatever the temperature", "Only temperature 0 is greedy; otherwise draw from "
        "the distribution with u: id = number of cdf entries below u.", greedy="always"),
    _sv("temperature 0 is not treated as greedy decoding", "At T = 0, z / T divides by zero: return "
        "logits.argmax(-1) instead.", greedy="divide"),
    _sv("the softmax runs over the batch axis", "Normalise over the vocabulary, the last axis: "
        "torch.softmax(z, dim=-1).", dim=0),
)

#: The sampling cases: (temperature, top_k); the batch holds N rows of V logits.
SAMPLE_CASES = ((1.0, None), (0.5, None), (1.5, None), (1.0, 5), (0.7, 3), (0.0, None))
_N, _V = 300, 11


def _sample_inputs(seed: int, temperature: float, top_k: int | None) -> tuple[Tensor, Tensor]:
    """Logits (N, V) and uniforms (N,), each u at least 1e-6 from every cdf entry of the answer."""
    gen = torch.Generator().manual_seed(seed)
    logits = 2.0 * torch.randn(_N, _V, generator=gen)
    u = torch.rand(_N, generator=gen)
    if temperature > 0:
        cdf = lm.next_char_probs(logits.double(), temperature, top_k).cumsum(-1)
        for _ in range(5):
            close = ((cdf - u.double()[:, None]).abs() < 1e-6).any(-1)
            if not bool(close.any()):
                break
            u[close] = torch.rand(int(close.sum()), generator=gen)
    return logits, u


def _ids(result: Any, name: str, n: int, V: int) -> Tensor:
    """The student's ids as a clean int64 tensor (n,), after checking type, shape, dtype and range."""
    if result is None:
        fail(f"{name}: your {name} returned None — did you forget `return`? Expected a tensor of {n} ids.")
    if type(result) is np.ndarray:
        result = torch.as_tensor(np.array(result, copy=True))
    elif type(result) is not Tensor:
        fail(f"{name}: your {name} returned a {_type_name(result)}; expected an integer torch.Tensor of shape ({n},), "
             f"one character id per row of logits.")
    if tuple(result.shape) != (n,):
        hint = " — squeeze the last axis (torch.multinomial and searchsorted keep it)" if tuple(result.shape) == (n, 1) \
            else ""
        fail(f"{name}: expected ids of shape ({n},), one per row of logits, got {tuple(result.shape)}{hint}.")
    if result.is_floating_point() or result.is_complex() or result.dtype == torch.bool:
        fail(f"{name}: expected integer ids (int64), got {str(result.dtype).replace('torch.', '')}; the number of cdf "
             f"entries below u, or an argmax, is already an integer.")
    ids = torch.empty(n, dtype=torch.int64)
    ids.copy_(result.detach())
    bad = (ids < 0) | (ids >= V)
    if bool(bad.any()):
        fail(f"{name}: id {int(ids[bad][0])} is outside the vocabulary 0..{V - 1} (row {int(bad.nonzero()[0])}); "
             f"if it equals {V}, u was above the last cdf entry: are the probabilities normalised to sum to 1?")
    return ids


def _sample_words(name: str):
    def wording(case: Case, got: list[Tensor], mism: list[Mismatch | None], named: Mistake | None,
                others: Sequence) -> str:
        ids, want = got[0], case.expected[0]
        wrong = int((ids != want).sum())
        if named is not None:
            return (f"{name}: {named.label}. {wrong} of {_N} ids differ from the reference, exactly as that mistake "
                    f"makes them. {named.hint} (case: {case.label}.)")
        row = int((ids != want).nonzero()[0])
        return (f"{name}: {wrong} of {_N} ids differ from the reference; the first at row {row}: got "
                f"{int(ids[row])}, expected {int(want[row])} (case: {case.label}). Compute p = softmax(z / T) over "
                f"the last axis (after keeping the top_k largest logits), cdf = p.cumsum(-1), and return the number "
                f"of cdf entries below u in each row; use the given u, not a new random draw.")
    return wording


def build_sample(name: str = "sample", seed: int = 0) -> tuple[Exercise, list[Case]]:
    """The sampling exercise (the student's function called ``name``) and its cases, :data:`SAMPLE_CASES`."""
    cases = []
    for c, (temperature, top_k) in enumerate(SAMPLE_CASES):
        logits, u = _sample_inputs(seed * 100 + c, temperature, top_k)
        case = Case({"logits": logits, "temperature": temperature, "top_k": top_k, "u": u},
                    [Leaf("ids", (("row", _N),))], [],
                    f"temperature={temperature:g}, top_k={top_k}, {_N} rows of {_V} logits, seed={seed}")
        case.expected = [lm.sample_ids(logits.double(), temperature, top_k, u.double()).double()]
        cases.append(case)
    ex = Exercise(name, ("logits", "temperature", "top_k", "u"),
                  lambda result, case: [_ids(result, name, _N, _V).double()], SAMPLE, atol=0.0, rtol=0.0,
                  dtype=torch.float64, wording=_sample_words(name),
                  passed=f"the same ids as the reference in {len(SAMPLE_CASES)} cases of {_N} rows (temperatures 0, "
                         f"0.5, 0.7, 1 and 1.5, top_k None, 3 and 5)")
    return ex, cases


@student_facing
def check_sample(fn: Any, *, seed: int = 0) -> None:
    """Grade ``fn(logits, temperature, top_k, u) -> ids``: one character id per row, drawn with ``u``.

    Prints one line on success; raises :class:`CheckFailed` naming the mistake otherwise.
    """
    grade(fn, *build_sample(_name(fn, "sample"), seed))


# ============================================================================= one epoch of truncated BPTT

#: The tiny model of the TBPTT check: vocabulary, embedding and hidden sizes.
_TB_V, _TB_E, _TB_H = 7, 4, 5


def tbptt_variant(weights: dict[str, Tensor], ids: Tensor, batch_size: int, seq_len: int, lr: float, *,
                  carry: bool = True, layout: str = "rows", targets: str = "shifted",
                  reduction: str = "mean") -> tuple[Tensor, dict[str, Tensor], Tensor]:
    """One epoch of truncated BPTT with SGD, with switches for the mistakes (defaults: the right answer).

    carry      True: the state is carried to the next window (detached); False: zeros every window
    layout     ``"rows"``: row n of window k+1 continues row n of window k; ``"chunks"``: the windows are
               consecutive chunks of the text, ``reshape(K, N, L)``, so the state a row carries belongs to
               other text than the row's next window
    targets    ``"shifted"``: y = x shifted by one; ``"same"``: y = x
    reduction  ``"mean"`` or ``"sum"`` of the per-character cross-entropy
    """
    with torch.enable_grad():          # it trains, even where a caller switched autograd off
        return _tbptt_epoch(weights, ids, batch_size, seq_len, lr, carry=carry, layout=layout, targets=targets,
                            reduction=reduction)


def _tbptt_epoch(weights, ids, batch_size, seq_len, lr, *, carry, layout, targets, reduction):
    model = lm.char_model("gru", _TB_V, _TB_H, embed_size=_TB_E, seed=None).double()
    model.load_state_dict({k: v.double() for k, v in weights.items()})
    N, L = batch_size, seq_len
    xs, ys = lm.stream_windows(ids, N, L)                          # (K, N, L)
    if layout == "chunks":
        K = xs.shape[0]
        xs, ys = ids[:K * N * L].reshape(K, N, L), ids[1:K * N * L + 1].reshape(K, N, L)
    if targets == "same":
        ys = xs
    params = list(model.parameters())
    losses, state = [], None
    for k in range(xs.shape[0]):
        logits, state = lm.run(model, xs[k], state if carry else None)   # (N, L, V), (1, N, H)
        loss = nn.functional.cross_entropy(logits.reshape(-1, _TB_V), ys[k].reshape(-1), reduction=reduction)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= lr * g
        state = state.detach()
        losses.append(float(loss.detach()))
    after = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return torch.tensor(losses, dtype=torch.float64), after, state


def _tv(label: str, hint: str, **switches) -> Mistake:
    def mistaken(*args) -> tuple[Tensor, dict[str, Tensor], Tensor]:      # returned as a student would, float32
        losses, weights, state = tbptt_variant(*args, **switches)
        return losses.float(), {k: v.float() for k, v in weights.items()}, state.float()
    return Mistake(label, hint, mistaken)


_NOT_DETACHED = ("the state carried into the next window is not detached",
                 "After each optimiser step, carry state = state.detach(): the values go on, the graph of the "
                 "window before (already freed by backward) does not.")
TBPTT: tuple[Mistake, ...] = (
    _tv("the state is reset to zeros every window instead of carried", "Pass the state the previous window "
        "ended with (detached) into the next window; only the first window starts from None.", carry=False),
    _tv("the state is carried into windows that do not continue its batch row (the windows were cut with "
        "reshape(K, N, L))", "Cut the text into N contiguous rows first, ids[:N*T].view(N, T), then window each "
        "row, so that row n of window k+1 is the text right after row n of window k.", layout="chunks"),
    _tv("the targets are the inputs themselves, not the next characters", "y is x shifted by one character: "
        "the targets of ids[s:s+L] are ids[s+1:s+L+1].", targets="same"),
    _tv("the loss is summed over characters instead of averaged", "Use the mean cross-entropy "
        "(F.cross_entropy's default reduction), so that lr does not scale with N*L.", reduction="sum"),
)

_TB_KEYS = ("losses", "weights", "state")


def _tbptt_inputs(seed: int, N: int, L: int, K: int) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(seed)
    model = lm.char_model("gru", _TB_V, _TB_H, embed_size=_TB_E, seed=seed)
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    T = K * L + 2                                                  # two characters left over in each row
    ids = torch.randint(0, _TB_V, (N * T + 1,), generator=gen)
    return {"weights": weights, "ids": ids, "batch_size": N, "seq_len": L, "lr": 0.5}


def _tbptt_result(result: Any, name: str, K: int, N: int, weights: dict[str, Tensor]) -> list[Tensor]:
    """``[losses (K,), every weight in the model's order, state (1, N, H)]`` as clean float64 tensors."""
    got = unpack_nested(result, _TB_KEYS, name)
    losses = got["losses"]
    if type(losses) in (list, tuple) and all(type(v) in (float, int) for v in losses):
        losses = torch.tensor([float(v) for v in losses])
    if type(losses) is not Tensor or tuple(losses.shape) != (K,) or not losses.is_floating_point():
        fail(f"{name}: losses should be a float tensor of shape ({K},), the loss of each of the {K} windows in order, "
             f"got {_type_name(losses)} of shape {tuple(getattr(losses, 'shape', ()))}; collect loss.item() of every "
             f"window and return torch.tensor(...) of them.")
    model = lm.char_model("gru", _TB_V, _TB_H, embed_size=_TB_E, seed=None)
    clean = clean_state_dict(got["weights"], model, name)
    state = got["state"]
    if type(state) is not Tensor:
        fail(f"{name}: state should be the GRU's last state, a tensor of shape (1, {N}, {_TB_H}), got a "
             f"{_type_name(state)}.")
    if tuple(state.shape) == (N, _TB_H):
        state = state[None]
    if tuple(state.shape) != (1, N, _TB_H) or not state.is_floating_point():
        fail(f"{name}: state should be the GRU's last state, of shape (1, {N}, {_TB_H}) (layers, batch, hidden), "
             f"got {tuple(state.shape)}.")
    return [losses.detach().double().clone(), *(clean[k].double() for k in weights), state.detach().double().clone()]


def _tbptt_words(name: str):
    def wording(case: Case, got: list[Tensor], mism: list[Mismatch | None], named: Mistake | None,
                others: Sequence) -> str:
        wrong = [leaf.what for leaf, m in zip(case.leaves, mism) if m is not None]
        if named is not None:
            return (f"{name}: {named.label}. {', '.join(wrong)} differ from the reference exactly as that mistake "
                    f"makes them. {named.hint} (case: {case.label}.)")
        err = next(m for m in mism if m is not None).max_err
        return (f"{name}: {wrong[0]} differs from the reference by up to {err:.3g}"
                f"{' (and so do ' + ', '.join(wrong[1:]) + ')' if len(wrong) > 1 else ''} (case: {case.label}). "
                f"For each window in order: run the model from the carried state, take the mean cross-entropy "
                f"against the next characters, step SGD (p -= lr * grad), then carry state.detach().")
    return wording


def build_tbptt(name: str = "tbptt_epoch", seed: int = 0) -> tuple[Exercise, list[Case]]:
    """The truncated-BPTT exercise (the student's function called ``name``) and its two cases."""
    cases = []
    for c, (N, L, K) in enumerate(((3, 5, 4), (2, 4, 3))):
        args = _tbptt_inputs(seed * 10 + c, N, L, K)
        leaves = [Leaf("losses", (("window", K),))]
        leaves += [Leaf(k, tuple((f"axis {i}", n) for i, n in enumerate(v.shape))) for k, v in args["weights"].items()]
        leaves += [Leaf("state", (("layer", 1), ("batch", N), ("hidden", _TB_H)))]
        case = Case(args, leaves, [], f"batch_size={N}, seq_len={L}, {K} windows, lr={args['lr']}, seed={seed}")
        ref_losses, ref_weights, ref_state = tbptt_variant(**args)
        case.expected = [ref_losses, *(ref_weights[k].double() for k in args["weights"]), ref_state.double()]
        cases.append(case)

    def unpack(result: Any, case: Case) -> list[Tensor]:
        N, K = case.args["batch_size"], case.leaves[0].shape[0]
        return _tbptt_result(result, name, K, N, case.args["weights"])

    ex = Exercise(name, ("weights", "ids", "batch_size", "seq_len", "lr"), unpack, TBPTT, atol=2e-4, rtol=1e-3,
                  dtype=torch.float64, wording=_tbptt_words(name),
                  passed=f"the same losses, weights and carried state as the reference in {len(cases)} cases "
                         f"(batch rows 3 and 2, windows of 5 and 4 characters)")
    return ex, cases


#: The exercises of this module, for the catalogue tests (see :mod:`._engine`). ``check_char_model`` trains
#: and scores against a target perplexity: it has no catalogue of mistakes.
EXERCISES: dict[str, Builder] = {"sample": build_sample, "tbptt_epoch": build_tbptt}


@student_facing
def check_tbptt_epoch(fn: Any, *, seed: int = 0) -> None:
    """Grade ``fn(weights, ids, batch_size, seq_len, lr) -> (losses, weights, state)``: one epoch of truncated BPTT.

    Prints one line on success; raises :class:`CheckFailed` naming the mistake otherwise.
    """
    name = _name(fn, "tbptt_epoch")
    ex, cases = build_tbptt(name, seed)
    try:
        with torch.enable_grad():
            grade(fn, ex, cases)
    except CheckFailed as exc:
        text = str(exc)
        if "backward through the graph a second time" in text or "modified by an inplace operation" in text:
            # an undetached state fails in the first case already: every case has several windows
            fail(f"{name}: {_NOT_DETACHED[0]}: the next window's backward reached back into the graph of the "
                 f"window before, which PyTorch had already freed. {_NOT_DETACHED[1]} (case: {cases[0].label}.)")
        raise


# ============================================================================= training to a target

#: The exercise's model: ``char_model(MODEL_KIND, V, MODEL_HIDDEN, embed_size=MODEL_EMBED)``.
MODEL_KIND, MODEL_HIDDEN, MODEL_EMBED = "gru", 48, 16
#: Held-out perplexity to beat. Measured (seeds 0 and 1): 100 windows of 32 x 32 characters with Adam (lr 2e-2,
#: clipping at 1) reach 7.6-7.8, with lr 1e-2 9.1; the untrained model scores 72, the unigram model 23.6.
TARGET_PERPLEXITY = 10.0


def exercise_model(vocab_size: int) -> nn.Module:
    """A fresh model of the exercise's architecture, for loading the student's weights into."""
    return lm.char_model(MODEL_KIND, vocab_size, MODEL_HIDDEN, embed_size=MODEL_EMBED, seed=None)


@student_facing
def check_char_model(fn: Any, *, seed: int = 0, target: float = TARGET_PERPLEXITY) -> None:
    """Grade ``fn(train_ids, vocab_size, seed) -> state dict``: train the exercise's model on the training text.

    The returned tensors are checked against the exercise's architecture and loaded into a fresh reference
    model, whose perplexity on the held-out end of the text (never passed to ``fn``) must be below ``target``.
    Prints the perplexity and a short sample on success; raises :class:`CheckFailed` otherwise.
    """
    name = _name(fn, "train_char_model")
    check_callable(fn, name, ("train_ids", "vocab_size", "seed"))
    c = lm.corpus()
    V = c.vocab.size
    with torch.enable_grad():
        result = call_student(fn, name, {"train_ids": c.train.clone(), "vocab_size": V, "seed": seed})
    model = load_trained(result, lambda: exercise_model(V), name)
    ppl = lm.perplexity(lm.cross_entropy(model, c.held_out))
    unigram = lm.perplexity(lm.unigram_cross_entropy(c.train, c.held_out, V))
    if not math.isfinite(ppl):
        fail(f"{name}: with the weights you return, the held-out perplexity is not finite; training diverged "
             f"(lower the learning rate or clip the gradients).")
    if ppl >= target:
        fail(f"{name}: with the weights you return, the held-out perplexity is {ppl:.2f}, above the target "
             f"{target:g} (the unigram model scores {unigram:.1f}, an untrained model about {V}). Check that the "
             f"loss of your windows goes down: the targets must be the next characters, and every window needs "
             f"zero_grad, backward and an optimiser step.")
    text = lm.generate(model, c.vocab, "Alice ", 80, temperature=0.7, seed=seed)
    print(f"{name}: held-out perplexity {ppl:.2f} < target {target:g} (unigram {unigram:.1f}, uniform {V}). "
          f"At temperature 0.7 it writes: {'Alice ' + text!r}")
