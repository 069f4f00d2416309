"""course_lib.checkers.language_model: does each check pass the right answer and name each known mistake?"""
from __future__ import annotations

import math
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F

from course_lib import language_model as lm
from course_lib.checkers import CheckFailed, check_char_model, check_sample, check_tbptt_epoch
from course_lib.checkers import language_model as clm
from course_lib.language_model import char_model, run

torch.set_num_threads(1)


def _fails(check, fn, *pieces, **kwargs):
    with pytest.raises(CheckFailed) as info:
        check(fn, **kwargs)
    for piece in pieces:
        assert piece in str(info.value), str(info.value)
    return str(info.value)


# ----------------------------------------------------------------------------- sampling, written independently

def sample(logits, temperature, top_k, u, *, after=False, keep=0, always_argmax=False):
    if temperature == 0 or always_argmax:
        return logits.argmax(-1)
    z = logits if after else logits / temperature
    if top_k is not None:
        values, _ = torch.sort(z, dim=-1, descending=True)
        kth = values[:, top_k - 1 + keep:top_k + keep]
        z = torch.where(z > kth if keep == -1 else z >= kth, z, torch.full_like(z, -math.inf)) if keep != -1 \
            else torch.where(z >= values[:, top_k - 2:top_k - 1], z, torch.full_like(z, -math.inf))
    p = torch.exp(z - z.max(-1, keepdim=True).values)
    p = p / p.sum(-1, keepdim=True)
    if after:
        p = p / temperature
    return torch.searchsorted(p.cumsum(-1), u[:, None]).squeeze(1).clamp(max=logits.shape[-1] - 1)


def test_sample_right_answer_passes(capsys):
    check_sample(sample)
    check_sample(sample, seed=3)
    assert "the same ids as the reference" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, label", [
    (dict(after=True), "the temperature is applied after the softmax"),
    (dict(keep=-1), "top-k keeps k-1 characters"),
    (dict(keep=1), "top-k keeps k+1 characters"),
    (dict(always_argmax=True), "every draw is the argmax, whatever the temperature"),
])
def test_sample_mistakes_are_named(mistake, label):
    _fails(check_sample, lambda *a: sample(*a, **mistake), label)


def test_sample_that_draws_its_own_randomness_is_told_to_use_u():
    def own(logits, temperature, top_k, u):
        if temperature == 0:
            return logits.argmax(-1)
        return torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=torch.Generator().manual_seed(0)).squeeze(1)
    _fails(check_sample, own, "use the given u")


def test_sample_shape_and_dtype_errors_are_one_sentence():
    _fails(check_sample, lambda l, t, k, u: sample(l, t, k, u)[:, None], "squeeze the last axis")
    _fails(check_sample, lambda l, t, k, u: sample(l, t, k, u).float(), "expected integer ids")


# ----------------------------------------------------------------------------- TBPTT, written independently

def tbptt_epoch(weights, ids, batch_size, seq_len, lr, *, detach=True, reset=False, reshape=False):
    V, H = weights["head.weight"].shape
    model = char_model("gru", V, H, embed_size=weights["embed.weight"].shape[1])
    model.load_state_dict(weights)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    N, L = batch_size, seq_len
    T = (len(ids) - 1) // N
    K = T // L
    if reshape:
        xs = [ids[k * N * L:(k + 1) * N * L].view(N, L) for k in range(K)]
        ys = [ids[k * N * L + 1:(k + 1) * N * L + 1].view(N, L) for k in range(K)]
    else:
        rx, ry = ids[:N * T].view(N, T), ids[1:N * T + 1].view(N, T)
        xs = [rx[:, k * L:(k + 1) * L] for k in range(K)]
        ys = [ry[:, k * L:(k + 1) * L] for k in range(K)]
    losses, state = [], None
    for x, y in zip(xs, ys):
        logits, state = run(model, x, None if reset else state)
        loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if detach:
            state = state.detach()
        losses.append(loss.item())
    return torch.tensor(losses), {k: v.detach().clone() for k, v in model.state_dict().items()}, state.detach()


def test_tbptt_right_answer_passes(capsys):
    check_tbptt_epoch(tbptt_epoch)
    check_tbptt_epoch(tbptt_epoch, seed=4)
    assert "the same losses, weights and carried state" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, label", [
    (dict(detach=False), "the state carried into the next window is not detached"),
    (dict(reset=True), "the state is reset to zeros every window instead of carried"),
    (dict(reshape=True), "the state is carried into windows that do not continue its batch row"),
])
def test_tbptt_mistakes_are_named(mistake, label):
    _fails(check_tbptt_epoch, lambda *a: tbptt_epoch(*a, **mistake), label)


def test_tbptt_reference_agrees_with_an_independent_epoch():
    """Is the checker's oracle (tbptt_variant) the same computation as torch.optim.SGD and backward()?"""
    args = clm._tbptt_inputs(0, 3, 5, 4)
    want = tbptt_epoch(**{k: (dict(v) if isinstance(v, dict) else v) for k, v in args.items()})
    got = clm.tbptt_variant(**args)
    assert torch.allclose(got[0].float(), want[0], atol=1e-5)
    assert all(torch.allclose(got[1][k].float(), want[1][k], atol=1e-5) for k in want[1])
    assert torch.allclose(got[2].float(), want[2], atol=1e-5)


def test_tbptt_bad_state_dict_is_refused():
    def wrong_keys(weights, ids, batch_size, seq_len, lr):
        losses, new, state = tbptt_epoch(weights, ids, batch_size, seq_len, lr)
        return losses, {"gru." + k: v for k, v in new.items()}, state
    _fails(check_tbptt_epoch, wrong_keys, "does not name the model's tensors")


# ----------------------------------------------------------------------------- training to a target

def _train(train_ids, vocab_size, seed, *, steps=100, shift=1, as_ordered=False):
    model = char_model("gru", vocab_size, 48, embed_size=16, seed=seed)
    xs, ys = lm.stream_windows(train_ids, 32, 32)
    if shift == 0:
        ys = xs
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    state = None
    for step in range(steps):
        k = step % xs.shape[0]
        logits, state = run(model, xs[k], None if k == 0 else state)
        loss = F.cross_entropy(logits.reshape(-1, vocab_size), ys[k].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        state = state.detach()
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return OrderedDict(sd) if as_ordered else sd


def test_a_trained_model_reaches_the_target_and_an_untrained_one_does_not(capsys):
    check_char_model(_train)
    assert "held-out perplexity" in capsys.readouterr().out
    _fails(check_char_model, lambda t, v, s: _train(t, v, s, steps=0) if False else
           {k: p.detach().clone() for k, p in char_model("gru", v, 48, embed_size=16, seed=s).state_dict().items()},
           "above the target")


def test_training_on_the_inputs_as_targets_misses_the_target():
    _fails(check_char_model, lambda t, v, s: _train(t, v, s, steps=60, shift=0), "above the target")


def test_an_ordered_dict_is_refused_with_the_fix():
    _fails(check_char_model, lambda t, v, s: OrderedDict(_train(t, v, s, steps=1)), "plain dict", "state_dict().items()")
