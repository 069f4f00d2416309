"""Tests of course_lib.checkers.mistakes: is the catalogue of mistakes sound and is every entry reachable?

1. With every switch at its default, each switchable implementation agrees with torch (so a mistake
   is exactly one switch away from the right answer).
2. Every entry differs clearly from the right answer on its checker's own cases (else it could never be named).
   The exercises are found in every checker module's ``EXERCISES`` (:func:`course_lib.checkers.exercises`).
3. Every entry is named for at least one student-style wrong implementation in ``wrong_impls.py``.
"""
import inspect

import pytest
import torch
import torch.nn.functional as F

import wrong_impls as W
from course_lib import checkers
from course_lib.checkers import mistakes
from course_lib.checkers._engine import mistake_leaves



@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def _load(module, w, suffix=""):
    with torch.no_grad():
        for name, t in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), w):
            getattr(module, name + suffix).copy_(t)
    return module


def _weights(G, H_in, H):
    return [torch.randn(G * H, H_in, dtype=torch.float64), torch.randn(G * H, H, dtype=torch.float64),
            torch.randn(G * H, dtype=torch.float64), torch.randn(G * H, dtype=torch.float64)]


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_default_cell_variants_match_torch(kind):
    """Does each switchable cell, with no switch on, compute what torch.nn's cell computes?"""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    w = _weights(G, 4, 5)
    x, h, c = (torch.randn(3, n, dtype=torch.float64) for n in (4, 5, 5))
    cls = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[kind]
    module = _load(cls(4, 5).double(), w)
    with torch.no_grad():
        if kind == "lstm":
            got, want = mistakes.lstm_variant(x, (h, c), *w), module(x, (h, c))
        else:
            got, want = getattr(mistakes, f"{kind}_variant")(x, h, *w), (module(x, h),)
            got = (got,)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_default_layer_variant_matches_torch(kind):
    """Does the switchable layer, with no switch on, compute what torch.nn.RNN/LSTM/GRU computes?"""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    w = _weights(G, 4, 5)
    xs, h0, c0 = torch.randn(6, 3, 4, dtype=torch.float64), *(torch.randn(3, 5, dtype=torch.float64) for _ in "hc")
    module = _load({"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](4, 5).double(), w, "_l0")
    lstm = kind == "lstm"
    cell = getattr(mistakes, f"{kind}_variant")
    with torch.no_grad():
        out, last = mistakes.layer_variant(xs, (h0, c0) if lstm else h0, *w, cell=cell, lstm=lstm)
        want_out, want_last = module(xs, (h0[None], c0[None]) if lstm else h0[None])
    torch.testing.assert_close(out, want_out)
    for a, b in zip(last if lstm else (last,), want_last if lstm else (want_last,)):
        torch.testing.assert_close(a, b[0])


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_default_bptt_variant_matches_autograd_through_torch(kind):
    """Does the switchable BPTT, with no switch on, give autograd's gradients through torch.nn.RNN/LSTM?"""
    G = 4 if kind == "lstm" else 1
    w = _weights(G, 4, 5)
    module = _load((torch.nn.LSTM if kind == "lstm" else torch.nn.RNN)(4, 5).double(), w, "_l0")
    xs = torch.randn(5, 3, 4, dtype=torch.float64, requires_grad=True)
    states = [torch.randn(3, 5, dtype=torch.float64, requires_grad=True) for _ in range(G > 1 and 2 or 1)]
    grad_hs = torch.randn(5, 3, 5, dtype=torch.float64)
    hs, _ = module(xs, tuple(s[None] for s in states) if kind == "lstm" else states[0][None])
    want = torch.autograd.grad((hs * grad_hs).sum(), [xs, *states, *module.parameters()])
    variant = mistakes.lstm_bptt_variant if kind == "lstm" else mistakes.rnn_bptt_variant
    with torch.no_grad():
        got = variant(xs.detach(), *(s.detach() for s in states), *w, grad_hs)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("causal", [False, True])
def test_default_attention_variant_matches_torch(causal):
    """Does the switchable attention, with no switch on, match torch's scaled_dot_product_attention?"""
    q, k, v = (torch.randn(2, 5, d, dtype=torch.float64) for d in (8, 8, 3))
    torch.testing.assert_close(mistakes.attention_variant(q, k, v, causal),
                               F.scaled_dot_product_attention(q, k, v, is_causal=causal))


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_default_clip_variant_matches_torch(max_norm):
    """Does the switchable clipping, with no switch on, match torch.nn.utils.clip_grad_norm_?"""
    grads = [torch.randn(3, 2, dtype=torch.float64), torch.randn(4, dtype=torch.float64)]
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    torch.nn.utils.clip_grad_norm_(params, max_norm)
    for a, p in zip(mistakes.clip_variant(grads, max_norm), params):
        torch.testing.assert_close(a, p.grad)


BUILDS = checkers.exercises()     # every exercise of every checker module, found rather than listed


def test_every_checker_module_lists_its_exercises():
    """Does every module with a public check_* function list its exercises in EXERCISES, so that the catalogue
    tests cover it?"""
    for name, module in checkers.checker_modules().items():
        checks = [n for n, f in vars(module).items() if n.startswith("check_") and inspect.isfunction(f)
                  and f.__module__ == module.__name__]
        if checks:
            assert getattr(module, "EXERCISES", None), f"course_lib.checkers.{name} has {checks} but no EXERCISES"


@pytest.mark.parametrize("name", BUILDS)
def test_every_mistake_is_visible_on_the_checkers_cases(name):
    """Does every catalogue entry differ from the right answer by far more than the tolerance on some case?"""
    ex, cases = BUILDS[name]()
    for m in ex.mistakes:
        gaps = []
        for case in cases:
            leaves = mistake_leaves(ex, m, case)
            if leaves is not None:
                gaps.append(max(float((a - b).abs().max()) for a, b in zip(leaves, case.expected)))
        assert gaps and max(g for g in gaps if g == g) > 100 * ex.atol, (m.label, gaps)


def _table(name):
    """The check for one exercise and its student-style wrong implementations (with their phrases)."""
    kind, _, what = name.partition("_")
    check = getattr(checkers, f"check_{name}")
    if what == "cell":
        return check, W.CELL_MISTAKES[kind]
    if what == "layer":
        lifted = [(W.layer_from_cell(f, lstm=kind == "lstm"), p) for f, p in W.CELL_MISTAKES[kind]]
        return check, W.LAYER_MISTAKES[kind] + W.LOOP_MISTAKES[kind] + lifted
    if what == "backward":
        return check, W.BACKWARD_MISTAKES[kind]
    return check, {"attention": W.ATTENTION_MISTAKES, "clip_grad_norm": W.CLIP_MISTAKES}[name]


# A layer that ignores h_{t-1} in its cell behaves exactly like one that restarts every step from zeros
# (and c_t = i ⊙ g exactly like restarting c from zeros): the earlier entry is named, and says so.
SHADOWED = {
    "rnn_layer": {"the previous hidden state h_{t-1} is ignored":
                  "as if the previous hidden state h_{t-1} were ignored"},
    "lstm_layer": {"the term f ⊙ c_{t-1} is missing (c_t = i ⊙ g)": "as if the term f ⊙ c_{t-1} were missing"},
}


#: The exercises whose student-style wrong implementations live in wrong_impls.py (the others' are in
#: test_checkers_gradients.py, test_checkers_counting.py, test_checkers_keras_torch.py and
#: test_checkers_language_model.py, each with the phrase its message must contain).
TABLED = [f"{k}_cell" for k in ("rnn", "lstm", "gru")] + [f"{k}_layer" for k in ("rnn", "lstm", "gru")] + \
    ["rnn_backward", "lstm_backward", "attention", "clip_grad_norm"]


@pytest.mark.parametrize("name", TABLED)
def test_every_mistake_is_named_for_some_wrong_implementation(name):
    """Is every catalogue entry named in the message for at least one student-style wrong implementation?"""
    ex, _ = BUILDS[name]()
    check, rows = _table(name)
    text = "\n".join(W.failure_message(check, fn) for fn, _ in rows)
    for m in ex.mistakes:
        stands_in = SHADOWED.get(name, {}).get(m.label)
        assert (stands_in or m.label) in text, f"{name}: no wrong implementation is named {m.label!r}"


@pytest.mark.parametrize("checker,fn,phrase", W.OTHER_MISTAKES, ids=lambda v: getattr(v, "__name__", None))
def test_issue18_mistakes_get_the_right_message(checker, fn, phrase):
    """Is each realistic mistake that once got a misleading message, or passed, now told what is wrong?"""
    options = {"kind": "gru"} if checker == "check_parameter_count" else {}
    msg = W.failure_message(getattr(checkers, checker), fn, **options)
    assert phrase in msg, msg


def test_parameter_count_names_a_mistake_only_if_it_fits_every_size():
    """A recurrent matrix sized H x H_in coincides with 'no biases' at the first size: is 'biases' kept out?"""
    msg = W.failure_message(checkers.check_parameter_count, W.count_recurrent_h_by_h_in, kind="gru")
    assert "biases were left out" not in msg, msg


def test_layer_mistake_is_named_only_if_it_fits_every_case():
    """A layer right on the first case and wrong on a later one must not be named after a mistake that would have
    been wrong on the first case too."""
    def layer(xs, h0, w_ih, w_hh, b_ih, b_hh):
        out, h_n = W.layer_from_cell(W._rnn_step)(xs, h0, w_ih, w_hh, b_ih, b_hh)
        if h0 is None:                                     # wrong only when h0 is None: restarts from zeros
            out, h_n = W._h_layer_restart(W._rnn_step, from_zeros=True)(xs, h0, w_ih, w_hh, b_ih, b_hh)
        return out, h_n
    msg = W.failure_message(checkers.check_rnn_layer, layer)
    assert "every step starts again from zeros" not in msg, msg


@pytest.mark.parametrize("checker,fn", W.UNUSUAL_CORRECT, ids=lambda v: getattr(v, "__name__", None))
def test_unusual_but_correct_implementations_pass(checker, fn):
    """Does every correct implementation, however unusually written, pass (no correct one loses points)?"""
    options = {"kind": "gru"} if checker == "check_parameter_count" else {}
    check = getattr(checkers, checker)
    check(fn, **options)
    if "seed" in inspect.signature(check).parameters:
        check(fn, seed=3, **options)
